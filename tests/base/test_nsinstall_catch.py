"""The install namespace (install_root -> unshare -> nsinstall) for real, fast: the
bootstrap is the host's own rpm (Debian's 4.18, what the bookworm test ISO repacks as
its rpm) laid out as an unpacked bootstrap root, and the packages are signed here. What
a build sees: the installed list, the owned files, the database, the progress lines,
install times from SOURCE_DATE_EPOCH, and located errors."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from nestcustom.base import install
from nestcustom.base.resolve import Package, Plan
from nestcustom.base.variants import OPTIMIZED, STANDARD
from nestcustom.errors import BadInputError, NestcustomError
from tests.gitops.test_rpmdb_fast import build_db

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("dpkg") is None,
    reason="installing needs root, unshare and the host's rpm as a Debian package",
)
EPOCH = 1_700_000_000
_RPM_PACKAGES = ("rpm", "rpm-common", "librpm9", "librpmio9")


def host_bootstrap(boot: Path) -> None:
    """The host's rpm, its configuration and every library it loads, under `boot`, with
    the sh and bash its macros run (Debian's %_dbpath is `bash -c 'echo ~/.rpmdb'`)."""
    listed = subprocess.run(["dpkg", "-L", *_RPM_PACKAGES], capture_output=True, text=True)
    files = {Path(line) for line in listed.stdout.splitlines() if "/share/" not in line}
    files = {p for p in files if p.is_file()} | {Path("/usr/bin/bash"), Path("/usr/bin/dash")}
    for program in [p for p in files if p.parent.name == "bin" or ".so" in p.name]:
        linked = subprocess.run(["ldd", str(program)], capture_output=True, text=True).stdout
        files |= {Path(word) for word in linked.split() if word.startswith("/")}
    for source in files:
        target = boot / str(source).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.resolve(), target)
    (boot / "usr/bin/sh").symlink_to("dash")
    for link in ("bin", "sbin"):
        (boot / link).symlink_to("usr/bin")
    for directory in ("dev", "proc", "tmp", "root"):  # as the filesystem package makes them
        (boot / directory).mkdir(exist_ok=True)


class Iso:
    def __init__(self, root: Path) -> None:
        self.root = root  # the extracted ISO: Packages/ and the signing key
        self.boot = root.parent / "bootstrap"


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Iso:
    work = tmp_path_factory.mktemp("nsinstall")
    built = build_db(work)
    found = Iso(work / "iso")
    (found.root / "Packages").mkdir(parents=True)
    for rpm in built.rpms.values():
        shutil.copy2(rpm, found.root / "Packages" / rpm.name)
    shutil.copy2(work / "key.asc", found.root / "RPM-GPG-KEY-test")
    host_bootstrap(found.boot)
    return found


def _package(name: str, epoch: int, version: str, release: str) -> Package:
    path = f"Packages/{name}-{version}-{release}.noarch.rpm"
    return Package(name, epoch, version, release, "noarch", "dvd", path, path, "sha256", "0", 1, 1)


SBOM = _package("nc-sbom", 2, "1.5", "3")
LIB = _package("libnc-sbom", 0, "0.9", "1")
PLAIN = _package("nc-plain", 0, "3.0", "7")


def _install(
    iso: Iso,
    work: Path,
    packages: tuple[Package, ...],
    *,
    boot: Path | None = None,
    boot_lower: Path | None = None,
    iso_dir: Path | None = None,
    verified: tuple[str, ...] = (),
    lines: list[str] | None = None,
) -> install.Installed:
    if boot is None:  # each install gets its own bootstrap copy: the namespace writes into it
        boot = work / "bootstrap"
        shutil.copytree(iso.boot, boot, symlinks=True)
    return install.install_root(
        work=work,
        boot=boot,
        boot_lower=boot_lower,
        root=work / "root",
        iso_dir=iso_dir or iso.root,
        plan=Plan(packages, ()),
        keys=["/RPM-GPG-KEY-test"],
        variant=STANDARD,
        gpgcheck=True,
        source_date_epoch=EPOCH,
        on_line=(lines if lines is not None else []).append,
        verified=verified,
    )


def test_signed_packages_install_with_the_isos_rpm_and_are_listed(iso: Iso, tmp_path: Path) -> None:
    lines: list[str] = []
    done = _install(iso, tmp_path, (SBOM, LIB), lines=lines)
    assert done.packages == ("libnc-sbom-0:0.9-1.noarch", "nc-sbom-2:1.5-3.noarch")
    assert done.owned == {"/usr/share/nc-sbom/a", "/usr/share/nc-sbom/b"}
    assert (tmp_path / "root/usr/share/nc-sbom/a").read_text() == "a\n"
    assert done.dbpath == "/root/.rpmdb"  # where this (Debian's) rpm keeps it
    assert done.backend == "sqlite"
    assert (tmp_path / "root/root/.rpmdb/rpmdb.sqlite").is_file()
    assert done.rpm_version.startswith("RPM version 4.")
    assert done.normalized == 0  # nothing to normalize in a sqlite database
    assert done.seconds > 0 and done.normalize_seconds >= 0
    assert lines == [
        "phase verify",
        "phase install",
        "install 1/2 libnc-sbom-0:0.9-1.noarch",  # rpm's order: the library first
        "install 2/2 nc-sbom-2:1.5-3.noarch",
        "phase normalize",
    ]


def test_install_times_come_from_source_date_epoch(iso: Iso, tmp_path: Path) -> None:
    """rpm 4.18 takes its transaction id from SOURCE_DATE_EPOCH: the image's database
    says the ISO's date, not the build's, and the build knows it need not rewrite it."""
    done = _install(iso, tmp_path, (SBOM,))
    assert done.clock_install_times is False
    db = sqlite3.connect(tmp_path / "root/root/.rpmdb/rpmdb.sqlite")
    try:
        tids = {row[0] for row in db.execute("SELECT key FROM Installtid")}
    finally:
        db.close()
    assert tids == {EPOCH.to_bytes(4, "little")}


def test_progress_counts_each_package_as_rpm_names_it(iso: Iso, tmp_path: Path) -> None:
    """rpm -iv names a package with its epoch when it has one, and libnc-sbom's spec says
    `Epoch: 0`: rpm names it libnc-sbom-0:0.9-1.noarch, and it must be counted too."""
    lines: list[str] = []
    _install(iso, tmp_path, (SBOM, LIB, PLAIN), verified=(PLAIN.path,), lines=lines)
    installs = [line.split(" ") for line in lines if line.startswith("install ")]
    assert [count for _, count, _ in installs] == ["1/3", "2/3", "3/3"]
    assert {name for _, _, name in installs} == {
        "nc-sbom-2:1.5-3.noarch",
        "libnc-sbom-0:0.9-1.noarch",
        "nc-plain-3.0-7.noarch",
    }


def test_an_unsigned_package_stops_the_install_naming_it(iso: Iso, tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        _install(iso, tmp_path, (SBOM, PLAIN))
    assert caught.value.message.startswith("1 package(s) on the ISO fail the signature check")
    assert "nc-plain-3.0-7.noarch.rpm: digests OK" in caught.value.message
    assert not (tmp_path / "root/usr/share").exists()  # nothing was installed


def test_a_package_an_earlier_build_verified_is_not_checked_again(iso: Iso, tmp_path: Path) -> None:
    """isocache's verdicts: the unsigned one was "verified" before (by its checksum)."""
    done = _install(iso, tmp_path, (SBOM, PLAIN), verified=(PLAIN.path,))
    assert done.packages == ("nc-plain-0:3.0-7.noarch", "nc-sbom-2:1.5-3.noarch")


def test_a_kept_bootstrap_is_used_read_only_under_an_overlay(iso: Iso, tmp_path: Path) -> None:
    lower = tmp_path / "kept"
    shutil.copytree(iso.boot, lower, symlinks=True)
    before = sorted(str(p.relative_to(lower)) for p in lower.rglob("*"))
    boot = tmp_path / "stage" / "bootstrap"
    done = _install(iso, tmp_path, (SBOM,), boot=boot, boot_lower=lower)
    assert done.packages == ("nc-sbom-2:1.5-3.noarch",)
    assert sorted(str(p.relative_to(lower)) for p in lower.rglob("*")) == before
    assert (tmp_path / "stage/bootstrap-overlay/upper").is_dir()  # writes went above


def test_a_failing_mount_is_a_located_namespace_error(iso: Iso, tmp_path: Path) -> None:
    with pytest.raises(NestcustomError) as caught:
        _install(iso, tmp_path, (SBOM,), iso_dir=tmp_path / "no-such-iso")
    message = caught.value.message
    assert message.startswith("the install namespace failed (1 packages):\nmount --bind ")
    assert "no-such-iso" in message


def test_optimized_options_reach_rpm(iso: Iso, tmp_path: Path) -> None:
    """The variant's rpm options and macros go to the ISO's rpm (docs are left out)."""
    boot = tmp_path / "bootstrap"
    shutil.copytree(iso.boot, boot, symlinks=True)
    done = install.install_root(
        work=tmp_path,
        boot=boot,
        boot_lower=None,
        root=tmp_path / "root",
        iso_dir=iso.root,
        plan=Plan((SBOM,), ()),
        keys=["/RPM-GPG-KEY-test"],
        variant=OPTIMIZED,
        gpgcheck=False,
        source_date_epoch=EPOCH,
        on_line=lambda _: None,
    )
    assert done.packages == ("nc-sbom-2:1.5-3.noarch",)
