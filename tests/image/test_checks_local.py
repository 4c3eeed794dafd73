"""The image checks' judgements, run against this machine instead of a container.

`Checks` runs every command through a Runner (in production `podman exec` via
testinfra: tests/image/test_verify_universe.py). Here the Runner is this machine's sh
with the same quoting, and `rpm` reads a database of its own, filled with RPMs built by
rpmbuild for the test: the real rpm answers the real query, so what each check reports
(passed, expectation, detail) is pinned in seconds, without podman.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from nestcustom.image.checks import CheckResult, Checks, Output
from tests.gitops.rpms import Pkg, build_rpms


class LocalRunner:
    """A Runner on this machine: args quoted as testinfra quotes them; `rpm` uses `db`."""

    def __init__(self, bin_dir: Path) -> None:
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(self, command: str, *args: str, timeout: float | None = None) -> Output:
        line = command % tuple(shlex.quote(a) for a in args) if args else command
        try:
            done = subprocess.run(
                ["sh", "-c", line], capture_output=True, env=self.env, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return Output(-1, b"", f"still running after {timeout:g} s", timed_out=timeout)
        return Output(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> Checks:
    work = tmp_path_factory.mktemp("checks")
    rpms = build_rpms(
        [Pkg("nc-one", "1.0", "1"), Pkg("nc-two", "2.5", "3"), Pkg("nc-twin", "1.1", "1")],
        work / "rpms",
        work,
    )
    db = work / "db"
    db.mkdir()
    subprocess.run(
        ["rpm", "--dbpath", str(db), "-i", "--justdb", "--nodeps", "--noscripts", *map(str, rpms)],
        check=True,
        capture_output=True,
    )
    bin_dir = work / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "rpm"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("rpm")} --dbpath {db} "$@"\n')
    wrapper.chmod(0o755)
    return Checks(LocalRunner(bin_dir))


def test_an_installed_package_and_its_version(checks: Checks) -> None:
    assert checks.present("nc-one") == CheckResult("package", "nc-one", "installed", True)
    assert checks.present("nc-two", ">=", "2.5") == CheckResult(
        "package", "nc-two", "installed, version >= 2.5", True
    )
    assert checks.present("nc-two", ">", "2.5-3") == CheckResult(
        "package", "nc-two", "installed, version > 2.5-3", False, "installed version is 2.5-3"
    )
    assert checks.present("nc-one", exact="1.0-2", builtin=True, why="layer a installs it") == (
        CheckResult(
            "package",
            "nc-one",
            "installed, version 1.0-2",
            False,
            "installed version is 1.0-1 (layer a installs it)",
            True,
        )
    )
    assert checks.present("nc-one", exact="1.0-1").passed


def test_a_missing_package_says_why_it_was_wanted(checks: Checks) -> None:
    assert checks.present("nc-none", why="layer a installs it") == CheckResult(
        "package", "nc-none", "installed", False, "not installed (layer a installs it)"
    )


def test_absent_packages_by_name_and_by_glob(checks: Checks) -> None:
    assert checks.absent("nc-none") == CheckResult("package", "nc-none", "absent", True)
    assert checks.absent("nc-one", why="layer b removes it") == CheckResult(
        "package", "nc-one", "absent", False, "installed: 1.0-1.noarch (layer b removes it)"
    )
    assert checks.absent("nc-tw*") == CheckResult(
        "package", "nc-tw*", "absent", False, "installed: nc-twin-1.1-1.noarch, nc-two-2.5-3.noarch"
    )
    assert checks.absent("nc-x*").passed
    # globs as a shell reads them (rpm -qa would read a regular expression: ? = optional)
    assert checks.absent("nc-on?").detail == "installed: nc-one-1.0-1.noarch"
    assert checks.absent("?c-twin").detail == "installed: nc-twin-1.1-1.noarch"
    assert checks.absent("nc-tw[o]").detail == "installed: nc-two-2.5-3.noarch"
    assert checks.absent("?c-none").passed


def test_a_test_spec_is_read_as_name_op_version(checks: Checks) -> None:
    assert checks.package_spec(" nc-two >= 2.0 ").passed
    assert checks.package_spec("nc-two < 2.0").detail == "installed version is 2.5-3"
    assert checks.package_spec("nc-two >> 2") == CheckResult(
        "package", "nc-two >> 2", "installed", False, "cannot read this as NAME [OP VERSION]"
    )


def test_files_exist_with_their_mode_content_and_digest(checks: Checks, tmp_path: Path) -> None:
    motd = tmp_path / "motd"
    motd.write_text("Welcome to NestOS\n")
    motd.chmod(0o640)
    digest = hashlib.sha256(motd.read_bytes()).hexdigest()
    results = checks.file(str(motd), mode="0640", contains="NestOS", sha256=digest)
    assert [(r.expectation, r.passed, r.detail) for r in results] == [
        ("exists", True, ""),
        ("mode 0640", True, ""),
        ("contains 'NestOS'", True, ""),
        (f"content sha256 {digest[:12]}", True, ""),
    ]
    wrong = checks.file(str(motd), mode="644", contains="Fedora", sha256="0" * 64)
    assert [r.detail for r in wrong] == [
        "",
        "mode is 0640",
        "text not found in 18 bytes starting 'Welcome to NestOS\\n'",
        f"content sha256 is {digest[:12]}: not the recipe's file",
    ]


def test_a_files_owner_by_number_or_name_as_the_recipe_wrote_it(
    checks: Checks, tmp_path: Path
) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text("x\n")
    os.chown(conf, 990, 991)
    judged = {
        owner: [(r.expectation, r.detail) for r in checks.file(str(conf), owner=owner)][1]
        for owner in ("990:991", "0990", "990:990", "0:991", "root", "root:root")
    }
    assert judged == {
        "990:991": ("owner 990:991", ""),
        "0990": ("owner 0990", ""),  # the user alone; a number is a number
        "990:990": ("owner 990:990", f"owner is 990:991{_names(990, 991)}"),
        "0:991": ("owner 0:991", f"owner is 990:991{_names(990, 991)}"),
        "root": ("owner root", f"owner is 990:991{_names(990, 991)}"),
        "root:root": ("owner root:root", f"owner is 990:991{_names(990, 991)}"),
    }
    os.chown(conf, 0, 0)
    assert [r.detail for r in checks.file(str(conf), owner="root:root")] == ["", ""]
    assert [r.detail for r in checks.file(str(conf), owner="0:root")] == ["", ""]
    assert [r.detail for r in checks.file(str(tmp_path / "gone"), owner="root")] == [
        "missing",
        "missing",
    ]


def _names(uid: int, gid: int) -> str:
    """The names stat adds when this machine has both."""
    try:
        return f" ({pwd.getpwuid(uid).pw_name}:{grp.getgrgid(gid).gr_name})"
    except KeyError:
        return ""


def test_missing_and_unwanted_files(checks: Checks, tmp_path: Path) -> None:
    gone = str(tmp_path / "gone")
    assert [(r.expectation, r.detail) for r in checks.file(gone, mode="0644")] == [
        ("exists", "missing"),
        ("mode 0644", "missing"),
    ]
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    assert [r.detail for r in checks.file(str(link), exists=False, contains="x")] == [
        "exists",  # a symlink to nothing is still there
        "contradicts exists: false",
    ]
    assert checks.file(gone, exists=False) == [
        CheckResult("file", gone, "does not exist", True, "")
    ]


def test_commands_exit_code_output_and_timeout(checks: Checks) -> None:
    assert checks.command(("echo", "nestos 22.03"), 0, r"22\.\d+").passed
    failed = checks.command(("sh", "-c", "echo boom >&2; exit 3"), 0, None)
    assert (failed.expectation, failed.detail) == ("exit 0", "exit 3: boom")
    assert checks.command(("echo", "done"), 1, None).detail == "exit 0"  # no output quoted
    other = checks.command(("echo", "fedora"), 0, "nestos")
    assert (other.expectation, other.detail) == ("exit 0, stdout ~ 'nestos'", "stdout was 'fedora'")
    bad = checks.command(("true",), 0, "(")
    assert bad.detail.startswith("bad regular expression: missing )")
    slow = checks.command(("sleep", "5"), 0, None, timeout=0.3)
    assert slow.detail == "timed out: still running after 0.3 s"


def test_an_rpm_that_cannot_read_its_database_is_not_a_missing_package(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "db").write_text("not a database directory")
    wrapper = bin_dir / "rpm"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("rpm")} --dbpath {tmp_path / "db"} "$@"\n')
    wrapper.chmod(0o755)
    broken = Checks(LocalRunner(bin_dir))
    result = broken.present("nc-one")
    assert not result.passed
    assert result.detail.startswith("cannot query rpm (exit 1: ")
    assert broken.absent("nc-one").detail.startswith("cannot query rpm (exit 1: ")


class MountedRunner(LocalRunner):
    """A LocalRunner whose commands see test directories mounted over system paths (/var,
    the systemd unit directories), in a mount namespace of their own."""

    def __init__(self, bin_dir: Path, mounts: dict[str, Path]) -> None:
        super().__init__(bin_dir)
        self.mounts = mounts

    def run(self, command: str, *args: str, timeout: float | None = None) -> Output:
        line = command % tuple(shlex.quote(a) for a in args) if args else command
        binds = " && ".join(
            f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}"
            for dst, src in self.mounts.items()
        )
        wrapped = f"{binds} && exec sh -c {shlex.quote(line)}"
        return super().run(
            "unshare --mount --propagation private sh -c %s", wrapped, timeout=timeout
        )


def mounted(tmp_path: Path, *paths: str) -> tuple[Checks, dict[str, Path]]:
    roots = {p: tmp_path / p.strip("/").replace("/", "_") for p in paths}
    for root in roots.values():
        root.mkdir()
    return Checks(MountedRunner(tmp_path, roots)), roots


def test_var_holds_only_directories(tmp_path: Path) -> None:
    checks, roots = mounted(tmp_path, "/var")
    (roots["/var"] / "lib" / "empty").mkdir(parents=True)
    assert checks.var_empty() == CheckResult(
        "var", "/var", "no files or symlinks (a NestOS host drops /var)", True, "", builtin=True
    )
    for i in range(12):
        (roots["/var"] / "lib" / f"f{i:02}").write_text("x")
    (roots["/var"] / "link").symlink_to("/etc/motd")
    result = checks.var_empty()
    assert not result.passed
    shown = result.detail.split(", ")
    assert len(shown) == 10 and shown[-1].endswith(" and 3 more")
    assert set(s.split(" and ")[0] for s in shown) <= {"/var/link"} | {
        f"/var/lib/f{i:02}" for i in range(12)
    }


UNIT = "[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"


@pytest.mark.parametrize("systemctl", [True, False], ids=["systemctl", "no-systemctl"])
def test_a_unit_is_enabled_by_its_wants_symlink_or_masked(tmp_path: Path, systemctl: bool) -> None:
    checks, roots = mounted(tmp_path, "/etc/systemd/system", "/usr/lib/systemd/system")
    lib, etc = roots["/usr/lib/systemd/system"], roots["/etc/systemd/system"]
    for name in ("nc-on.service", "nc-off.service", "nc-masked.service"):
        (lib / name).write_text(UNIT)
    (etc / "multi-user.target.wants").mkdir()
    (etc / "multi-user.target.wants" / "nc-on.service").symlink_to(
        "/usr/lib/systemd/system/nc-on.service"
    )
    (etc / "nc-masked.service").symlink_to("/dev/null")
    if not systemctl:  # an image without systemctl: the symlinks are read by a script
        (tmp_path / "systemctl").write_text("#!/bin/sh\nexit 127\n")
        (tmp_path / "systemctl").chmod(0o755)
    on, off, masked = (checks.unit(f"nc-{n}.service", True) for n in ("on", "off", "masked"))
    assert (on.passed, off.passed, masked.passed) == (True, False, False)
    assert checks.unit("nc-off.service", False).passed
    if systemctl:
        assert off.detail == "systemctl is-enabled says disabled"
        assert masked.detail.startswith("systemctl is-enabled says masked")
    else:
        assert off.detail == "not enabled (no *.wants or *.requires symlink)"
        assert masked.detail == "masked (/etc/systemd/system/nc-masked.service -> /dev/null)"
        assert checks.unit_state("nc-on.service") == (
            True,
            "enabled (/etc/systemd/system/multi-user.target.wants/nc-on.service)",
        )
        assert checks.unit("nc-gone.service", True).detail == (
            "not enabled (no *.wants or *.requires symlink); there is no unit file of that name"
        )
