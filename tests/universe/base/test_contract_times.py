"""The fixture NestOS images against docs/contracts/nestos-rpm-ostree.md section 1, "Times":
what a container build's rpm-ostree writes that depends on the clock."""

from __future__ import annotations

import pytest

from .fixtures_base import NestosImage

pytestmark = pytest.mark.universe


@pytest.fixture(params=["sp2", "sp1"])
def any_nestos(request: pytest.FixtureRequest) -> NestosImage:
    image: NestosImage = request.getfixturevalue(f"nestos_{request.param}")
    return image


INSTALLED = "rpm -q --qf '%{INSTALLTIME} %{INSTALLTID}\\n' nc-hello"


def test_install_stamps_the_clock_whatever_source_date_epoch_says(
    any_nestos: NestosImage,
) -> None:
    # NestOS's librpm 4.17 takes time(NULL) (lib/psm.c dbAdd, lib/transaction.c rpmtsRun);
    # only rpm 4.18 reads SOURCE_DATE_EPOCH, and rpm-ostree does not normalize in a container.
    r = any_nestos.run(
        f"date +%s; rpm-ostree install nc-hello >/dev/null && {INSTALLED}; date +%s",
        env={"SOURCE_DATE_EPOCH": "1000000000"},
    )
    assert r.returncode == 0, r.output
    start, stamps, end = r.stdout_lines
    installed, transaction = (int(n) for n in stamps.split())
    assert int(start) <= transaction <= installed <= int(end)


def test_a_transaction_leaves_no_rpm_lock(any_nestos: NestosImage) -> None:
    # rpm-ostree removes .dbenv.lock, .rpm.lock and __db.* after a container transaction.
    r = any_nestos.run(
        "test ! -e /usr/share/rpm/.rpm.lock && rpm-ostree install nc-hello >/dev/null "
        "&& rpm-ostree override remove nc-hello >/dev/null && ls -A /usr/share/rpm"
    )
    assert r.returncode == 0, r.output
    assert not [name for name in r.stdout_lines if "lock" in name or name.startswith("__db.")]
