"""The build helper's `clamp`, run in the fixture NestOS base: what a package command stamps
with the clock (the rpm database's install times, the password-change date of the users its
scriptlets add) comes out fixed by the image instead."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from tests.universe.base.fixtures_base import RPMS_MOUNT, NestosImage
from tests.universe.rpmrepo import RpmRepo

pytestmark = pytest.mark.universe

HELPER = Path(str(resources.files("nestcustom.containerfile") / "build-helper.sh"))
CLAMP = "sh /run/helper.sh clamp"
TIMES = "rpm -qa --qf '%{NAME} %{INSTALLTIME} %{INSTALLTID}\\n'"
NEWEST = "rpm -qa --qf '%{INSTALLTIME}\\n%{INSTALLTID}\\n' | sort -n | tail -n 1"


def run(image: NestosImage, script: str) -> list[str]:
    result = image.run(script, volumes={HELPER: "/run/helper.sh"})
    assert result.returncode == 0, result.output
    return result.stdout_lines


def test_added_packages_get_times_from_the_image_not_the_clock(nestos_sp2: NestosImage) -> None:
    lines = run(
        nestos_sp2,
        f"{NEWEST}; {CLAMP} rpm-ostree install nc-hello nc-scriptlet >/dev/null && {TIMES}",
    )
    newest = int(lines[0])
    packages = [line.split() for line in lines[1:]]  # in database order
    assert sorted(name for name, _, _ in packages[-3:]) == [
        "nc-hello",
        "nc-libgreet",
        "nc-scriptlet",
    ]
    # One transaction id, install times one second apart, all after the base's packages.
    assert [(int(t), int(tid)) for _, t, tid in packages[-3:]] == [
        (newest + 1, newest + 1),
        (newest + 2, newest + 1),
        (newest + 3, newest + 1),
    ]
    assert all(int(t) <= newest for _, t, _ in packages[:-3])


def test_two_builds_seconds_apart_write_the_same_rpm_database(nestos_sp2: NestosImage) -> None:
    script = (
        f"{CLAMP} rpm-ostree install nc-hello >/dev/null && sleep 1.1 "
        f"&& {CLAMP} rpm-ostree override remove nc-hello >/dev/null "
        f"&& {CLAMP} rpm-ostree install nc-hello nc-sysuser >/dev/null "
        "&& echo $(ls -A /usr/share/rpm) && sha256sum /usr/share/rpm/* && grep ncsvc /etc/shadow"
    )
    first = run(nestos_sp2, script)
    second = run(nestos_sp2, "sleep 1.1; " + script)
    assert first == second
    # No lock file and no sqlite write-ahead index (it holds random salts) is left behind.
    assert first[0] == "rpmdb.sqlite"


def test_a_replaced_package_is_stamped_like_an_added_one(
    nestos_sp2: NestosImage, rpm_repo: RpmRepo
) -> None:
    hello2 = sorted(p.name for p in rpm_repo.extra_path.glob("nc-hello-2.0-*.rpm"))[0]
    lines = run(
        nestos_sp2,
        f"{CLAMP} rpm-ostree install nc-hello >/dev/null && {NEWEST} "
        f"&& {CLAMP} rpm-ostree override replace /rpms-extra/{hello2} >/dev/null "
        "&& rpm -q --qf '%{VERSION} %{INSTALLTIME} %{INSTALLTID}\\n' nc-hello",
    )
    newest = int(lines[0])
    assert lines[1] == f"2.0 {newest + 1} {newest + 1}"


def test_users_added_get_no_clock_date_and_the_others_are_untouched(
    nestos_sp2: NestosImage,
) -> None:
    lines = run(
        nestos_sp2,
        f"cp /etc/shadow /tmp/before && {NEWEST} "
        f"&& {CLAMP} useradd -r -M -s /usr/sbin/nologin locked "
        f"&& {CLAMP} useradd -M -p '$6$salt$hash' withpassword "
        "&& grep -E '^(locked|withpassword):' /etc/shadow "
        "&& grep -v -x -F -f /etc/shadow /tmp/before | wc -l",
    )
    newest, locked, with_password, changed = lines
    # rpm-ostree's compose gives locked accounts no change date (normalize_etc_shadow);
    # an account with a password gets the day of the image's newest time.
    assert locked.split(":")[1:3] == ["!", ""]
    assert with_password.split(":")[1:3] == ["$6$salt$hash", str((int(newest) + 1) // 86400)]
    assert changed == "0"  # every line the base had is as it was


def test_the_command_fails_as_itself_and_values_are_filled(nestos_sp2: NestosImage) -> None:
    failed = nestos_sp2.run(
        f"{CLAMP} rpm-ostree install nc-missing", volumes={HELPER: "/run/helper.sh"}
    )
    assert failed.returncode == 1
    assert "error: Packages not found: nc-missing" in failed.stderr
    assert run(nestos_sp2, f"{CLAMP} echo '{{{{os.id}}}}-{{{{arch}}}}'")[0].startswith("nestos-")


def test_packages_on_the_command_line_are_found_in_rpms_mount(
    nestos_sp2: NestosImage, rpm_repo: RpmRepo
) -> None:
    local = f"{RPMS_MOUNT}/{rpm_repo.packages['nc-libgreet']}.rpm"
    lines = run(nestos_sp2, f"{NEWEST}; {CLAMP} rpm-ostree install {local} >/dev/null && {TIMES}")
    assert lines[-1].split()[1:] == [str(int(lines[0]) + 1)] * 2
