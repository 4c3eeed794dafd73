"""A package of a damaged ISO that is no RPM at all, checked by real rpmkeys: rpm 4.18
prints its name and a colon with no verdict and no line end (and nothing on stderr), so
the next package's verdict follows on the same line. Only the damaged file is refused,
saying rpmkeys cannot read it; the good package after it is not blamed. Both checks: the
host's of the bootstrap, and the ISO's rpm's in the install namespace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nestcustom.base import sigcheck
from nestcustom.errors import BadInputError
from tests.base.test_nsinstall_catch import LIB, SBOM, Iso, _install, _package, iso, pytestmark
from tests.base.test_sigcheck_catch import signed
from tests.gitops.test_rpmdb_fast import BuiltDb

__all__ = ["iso", "signed"]  # the fixtures used here
DAMAGED = "no verdict: rpmkeys cannot read it as a package"


def test_the_hosts_check_refuses_the_file_that_is_no_rpm_alone(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    built, key = signed
    damaged = tmp_path / "rpm-libs-4.14.3-1.x86_64.rpm"
    damaged.write_bytes(b"truncated by a bad download\n")
    rpms = [built.rpms["nc-sbom"], damaged, built.rpms["libnc-sbom"]]
    with pytest.raises(BadInputError) as caught:
        sigcheck.check_bootstrap(rpms, [key], tmp_path)
    message = caught.value.message
    assert message.startswith("1 package(s) of the ISO's rpm")
    assert f"rpm-libs-4.14.3-1.x86_64.rpm: {DAMAGED}" in message
    assert "sbom" not in message  # both signed packages verified


@pytestmark
def test_the_namespace_check_refuses_the_file_that_is_no_rpm_alone(
    iso: Iso, tmp_path: Path
) -> None:
    damaged_iso = tmp_path / "iso"
    shutil.copytree(iso.root, damaged_iso)
    broken = _package("nc-broken", 0, "1.0", "1")
    (damaged_iso / broken.path).write_bytes(b"truncated by a bad download\n")
    with pytest.raises(BadInputError) as caught:
        _install(iso, tmp_path, (SBOM, broken, LIB), iso_dir=damaged_iso)
    message = caught.value.message
    assert message.startswith("1 package(s) on the ISO fail the signature check")
    assert f"nc-broken-1.0-1.noarch.rpm: {DAMAGED}" in message
    assert "sbom" not in message
    assert not (tmp_path / "root/usr/share").exists()  # nothing was installed


def test_a_damaged_file_whose_name_starts_with_anothers_is_told_apart() -> None:
    # "p/a" and "p/a:b.rpm" (a colon in a file name is legal): the damaged "p/a:b.rpm"
    # is printed as "p/a:b.rpm:" with the next verdict after it; "p/a" must not take it.
    out = "p/a:b.rpm:p/c.rpm: digests signatures OK\np/a: digests signatures OK\n"
    assert sigcheck.verdicts(out, ["p/a", "p/a:b.rpm", "p/c.rpm"]) == {
        "p/a:b.rpm": "",
        "p/c.rpm": "digests signatures OK",
        "p/a": "digests signatures OK",
    }
