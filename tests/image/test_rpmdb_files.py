"""The files each package of an RPM database lists, as rechunking needs them, fast: real
RPMs made here with rpmbuild and installed with the host's rpm into a throwaway root
(`--root`, so the files are there as rpm puts them and the database is where an image
keeps it), then read back with `read_files`.

`install_packages` is shared with tests/image/test_rechunk_owners.py, which maps the
installed files back to their packages."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image.dblayers import FoundDb
from nestcustom.image.rpmdb import PackagedFile, PackageFiles, read_files

# A file, a symlink, directories (one empty), a %config file, a %ghost file, a file under
# /lib (a link to usr/lib in the root, as in the images), and a file its sub-package
# nc-own-also ships too (rpm lets packages share a file whose content is the same).
SPEC_A = """\
Name: nc-own-a
Version: 1.0
Release: 1
Summary: rechunk owners test package
License: MIT
BuildArch: noarch
%description
Rechunk owners test package.
%package -n nc-own-also
Summary: shares a file with nc-own-a
%description -n nc-own-also
Shares a file with nc-own-a.
%install
cd %{buildroot}
mkdir -p usr/share/nc-own/sub usr/share/nc-shared etc usr/bin var/lib/nc-own lib/nc-own
printf 'hello\\n' > usr/share/nc-own/data
printf 'conf=1\\n' > etc/nc-own.conf
printf 'same\\n' > usr/share/nc-shared/same
printf 'module\\n' > lib/nc-own/mod.conf
ln -s ../share/nc-own/data usr/bin/nc-own-link
touch var/lib/nc-own/state
%files
%dir /usr/share/nc-own
%dir /usr/share/nc-own/sub
/usr/share/nc-own/data
/usr/share/nc-shared/same
/usr/bin/nc-own-link
/lib/nc-own
%config(noreplace) /etc/nc-own.conf
%ghost /var/lib/nc-own/state
%files -n nc-own-also
/usr/share/nc-shared/same
"""

# Built with md5 file digests (what rpm before 4.6 wrote: no FILEDIGESTALGO at all), an
# epoch, and a sub-package without files.
SPEC_B = """\
Name: nc-own-b
Epoch: 3
Version: 2.0
Release: 1
Summary: rechunk owners test package, md5 digests
License: MIT
BuildArch: noarch
%description
Rechunk owners test package, md5 digests.
%package -n nc-own-empty
Summary: no files at all
%description -n nc-own-empty
No files at all.
%install
cd %{buildroot}
mkdir -p usr/share/nc-own-b
printf 'bee\\n' > usr/share/nc-own-b/bee
%files
/usr/share/nc-own-b
%files -n nc-own-empty
"""

DB_DIR = "usr/share/rpm"


@dataclass(frozen=True)
class Installed:
    root: Path  # the packages' files as rpm installed them; `lib` links to usr/lib
    found: FoundDb  # the database in it, as dblayers finds one in an image
    rpms: dict[str, Path]  # package name -> its RPM file


def _run(*argv: str | Path) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True)
    return done.stdout


def _rpmbuild(work: Path, name: str, spec: str, *defines: str) -> list[Path]:
    topdir = work / name
    (topdir / "SPECS").mkdir(parents=True)
    path = topdir / "SPECS" / f"{name}.spec"
    path.write_text(spec)
    options = ["debug_package %{nil}", "_build_id_links none", f"_topdir {topdir}", *defines]
    _run("rpmbuild", "-bb", "--quiet", *(a for o in options for a in ("--define", o)), path)
    return sorted((topdir / "RPMS").rglob("*.rpm"))


def install_packages(work: Path) -> Installed:
    rpms = [
        *_rpmbuild(work, "nc-own-a", SPEC_A),
        *_rpmbuild(work, "nc-own-b", SPEC_B, "_binary_filedigest_algorithm 1"),
    ]
    root = work / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    _run("rpm", "--root", root, "--dbpath", f"/{DB_DIR}", "-i", "--nodeps", "--nosignature",
         *rpms)  # fmt: skip
    db = root / DB_DIR
    files = {p.name: p.read_bytes() for p in db.iterdir() if p.name != ".rpm.lock"}
    names = {_run("rpm", "-qp", "--qf", "%{NAME}", rpm): rpm for rpm in rpms}
    return Installed(root, FoundDb(DB_DIR, "sqlite", files), names)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return install_packages(tmp_path_factory.mktemp("rpmdb-files"))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_every_package_with_its_files_as_rpm_lists_them(installed: Installed) -> None:
    a, also, b, empty = read_files(installed.found)
    assert (a.name, a.arch, a.evr, a.digest_algo) == ("nc-own-a", "noarch", "1.0-1", 8)
    assert a.files == (
        PackagedFile("/etc/nc-own.conf", "file", sha256("conf=1\n"), "", ghost=False),
        PackagedFile("/lib/nc-own", "dir", "", "", ghost=False),
        PackagedFile("/lib/nc-own/mod.conf", "file", sha256("module\n"), "", ghost=False),
        PackagedFile("/usr/bin/nc-own-link", "symlink", "", "../share/nc-own/data", ghost=False),
        PackagedFile("/usr/share/nc-own", "dir", "", "", ghost=False),
        PackagedFile("/usr/share/nc-own/data", "file", sha256("hello\n"), "", ghost=False),
        PackagedFile("/usr/share/nc-own/sub", "dir", "", "", ghost=False),
        PackagedFile("/usr/share/nc-shared/same", "file", sha256("same\n"), "", ghost=False),
        PackagedFile("/var/lib/nc-own/state", "file", "", "", ghost=True),  # no digest
    )
    assert (also.name, also.evr, also.digest_algo) == ("nc-own-also", "1.0-1", 8)
    assert also.files == (
        PackagedFile("/usr/share/nc-shared/same", "file", sha256("same\n"), "", ghost=False),
    )
    # Built with md5 digests: the header has no FILEDIGESTALGO, which rpm reads as md5.
    assert (b.name, b.evr, b.digest_algo) == ("nc-own-b", "3:2.0-1", 1)
    assert b.files == (
        PackagedFile("/usr/share/nc-own-b", "dir", "", "", ghost=False),
        PackagedFile("/usr/share/nc-own-b/bee", "file", md5("bee\n"), "", ghost=False),
    )
    assert (empty.name, empty.evr, empty.files) == ("nc-own-empty", "3:2.0-1", ())


def test_installed_sizes_are_rpms(installed: Installed) -> None:
    sizes = {p.name: p.size for p in read_files(installed.found)}
    assert sizes == {
        name: int(_run("rpm", "-qp", "--qf", "%{SIZE}", rpm))
        for name, rpm in installed.rpms.items()
    }
    assert sizes["nc-own-a"] == len("hello\nconf=1\nsame\nmodule\n") + len("../share/nc-own/data")


def test_the_ghost_flag_is_rpms_own(installed: Installed) -> None:
    """rpm's own listing of the package's file flags says which are %ghost."""
    listed = _run("rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\\n]",
                  installed.rpms["nc-own-a"])  # fmt: skip
    flagged = [line.partition(" ") for line in listed.splitlines()]
    rpm_ghosts = {path for flags, _, path in flagged if "g" in flags}
    packages: dict[str, PackageFiles] = {p.name: p for p in read_files(installed.found)}
    assert {f.path for f in packages["nc-own-a"].files if f.ghost} == rpm_ghosts
    assert rpm_ghosts == {"/var/lib/nc-own/state"}


def test_a_database_rpm_cannot_read_says_why() -> None:
    broken = FoundDb("var/lib/rpm", "sqlite", {"rpmdb.sqlite": b"not a database" * 100})
    with pytest.raises(NestcustomError) as raised:
        read_files(broken)
    assert raised.value.message.startswith(
        "the host's rpm cannot read the image's RPM database (sqlite, var/lib/rpm): "
    )
    assert "file is not a database" in raised.value.message
    assert (
        raised.value.hint == "install an rpm that reads this database format (apt-get install rpm)"
    )
