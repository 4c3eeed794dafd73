"""An image's RPM database read as `diff`, `sbom` and `advisories` read it, fast: a real
sqlite rpmdb made here with rpmbuild, rpmsign and `rpm --justdb` (no podman, no image),
then found in overlay-shaped layer directories as podman's local storage holds them.

`build_db` is shared with the other *_fast tests of this directory (SBOM, advisories)."""

from __future__ import annotations

import calendar
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image.dblayers import Entry, FoundDb, overlay_entries, search_overlay
from nestcustom.image.rpmdb import ChangelogEntry, Package, read_changelogs, read_packages
from tests.gitops.rpms import Pkg, build_rpms

# Epoch, vendor, a license expression and a changelog on the main package; the library
# sub-package has its own version, no epoch and another license.
SPEC = """\
Name: nc-sbom
Epoch: 2
Version: 1.5
Release: 3
Summary: SBOM test package
License: GPL-2.0-or-later AND MIT
Vendor: Nestcustom Test Vendor
BuildArch: noarch
%description
SBOM test package.
%package -n libnc-sbom
Epoch: 0
Version: 0.9
Release: 1
License: BSD-3-Clause
Summary: SBOM test library
%description -n libnc-sbom
SBOM test library.
%install
mkdir -p %{buildroot}/usr/share/nc-sbom
echo a > %{buildroot}/usr/share/nc-sbom/a
echo b > %{buildroot}/usr/share/nc-sbom/b
%files
/usr/share/nc-sbom/a
%files -n libnc-sbom
/usr/share/nc-sbom/b
%changelog
* Mon Nov 30 2026 Ann Packager <ann@nc.invalid> - 2:1.5-3
- fix the greeting
- keep | pipes and ``` fences
* Sun Nov 01 2026 Bob <bob@nc.invalid> - 2:1.4-1
- first build
"""


PLAIN_LOG = (("Sun Nov 01 2026", "Dan <dan@nc.invalid> - 3.0-7", "- plain start"),)


@dataclass(frozen=True)
class BuiltDb:
    found: FoundDb  # as dblayers finds it in an image
    directory: Path  # the rpmdb directory (rpm --dbpath)
    rpms: dict[str, Path]  # package name -> its RPM file
    key_id: str  # lower-case hex id of the key that signed nc-sbom and libnc-sbom
    key_created: int  # the key's creation time (its gpg-pubkey package's release, in hex)


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout


def build_db(work: Path) -> BuiltDb:
    """nc-sbom 2:1.5-3 and libnc-sbom 0.9-1 (signed), nc-plain 3.0-7 (unsigned, from
    tests/gitops/rpms.py), and the signing key imported (a gpg-pubkey entry)."""
    topdir = work / "rpmbuild"
    (topdir / "SPECS").mkdir(parents=True)
    spec = topdir / "SPECS" / "nc-sbom.spec"
    spec.write_text(SPEC)
    _run("rpmbuild", "-bb", "--quiet", "--define", f"_topdir {topdir}", "--define",
         "debug_package %{nil}", "--define", "_build_id_links none", spec)  # fmt: skip
    signed = sorted((topdir / "RPMS").rglob("*.rpm"))
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    _run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
         "NC Test <test@nc.invalid>", "ed25519", "sign", "never", env=env)  # fmt: skip
    listing = [
        line.split(":")
        for line in _run("gpg", "--list-keys", "--with-colons", env=env).splitlines()
    ]
    fingerprint = next(fields[9] for fields in listing if fields[0] == "fpr")
    created = next(int(fields[5]) for fields in listing if fields[0] == "pub")
    _run("rpmsign", "--define", "_gpg_name NC Test", "--define", f"__gpg {_run('which', 'gpg').strip()}",
         "--addsign", *signed, env=env)  # fmt: skip
    plain = build_rpms(
        [Pkg("nc-plain", "3.0", "7", PLAIN_LOG)], work / "plain", work / "plain-build"
    )
    directory = work / "db"
    directory.mkdir()
    rpms = [*signed, *plain]
    _run("rpm", "--dbpath", directory, "-i", "--justdb", "--nodeps", "--nosignature", *rpms)
    (work / "key.asc").write_text(_run("gpg", "--armor", "--export", fingerprint, env=env))
    _run("rpm", "--dbpath", directory, "--import", work / "key.asc")
    files = {
        p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and p.name != ".rpm.lock"
    }
    names = {_run("rpm", "-qp", "--qf", "%{NAME}", rpm): rpm for rpm in rpms}
    found = FoundDb("usr/share/rpm", "sqlite", files)
    return BuiltDb(found, directory, names, fingerprint[-16:].lower(), created)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltDb:
    return build_db(tmp_path_factory.mktemp("rpmdb"))


def noon(year: int, month: int, day: int) -> int:
    """The time rpm keeps for a changelog day (12:00 UTC)."""
    return calendar.timegm((year, month, day, 12, 0, 0))


def test_every_package_with_its_evr_arch_and_installed_size(built: BuiltDb) -> None:
    sizes = {n: int(_run("rpm", "-qp", "--qf", "%{SIZE}", r)) for n, r in built.rpms.items()}
    assert read_packages(built.found) == (
        Package("gpg-pubkey", "(none)", 0, built.key_id[-8:], f"{built.key_created:x}", 0),
        Package("libnc-sbom", "noarch", 0, "0.9", "1", sizes["libnc-sbom"]),
        Package("nc-plain", "noarch", 0, "3.0", "7", 64),
        Package("nc-sbom", "noarch", 2, "1.5", "3", sizes["nc-sbom"]),
    )
    assert sizes["libnc-sbom"] == sizes["nc-sbom"] == 2  # "a\n", "b\n"
    assert [p.evr for p in read_packages(built.found)[1:]] == ["0.9-1", "3.0-7", "2:1.5-3"]


def test_a_database_rpm_cannot_read_is_a_located_error(built: BuiltDb) -> None:
    broken = FoundDb("var/lib/rpm", "sqlite", {"rpmdb.sqlite": b"not a database" * 100})
    with pytest.raises(NestcustomError) as raised:
        read_packages(broken)
    assert raised.value.message.startswith(
        "the host's rpm cannot read the image's RPM database (sqlite, var/lib/rpm): "
    )
    assert (
        raised.value.hint == "install an rpm that reads this database format (apt-get install rpm)"
    )


def test_changelogs_newest_first_keyed_by_name_and_evr(built: BuiltDb) -> None:
    logs = read_changelogs(built.found, ["nc-sbom", "nc-plain", "nc-sbom"])
    assert logs == {
        ("nc-sbom", "2:1.5-3"): (
            ChangelogEntry(
                noon(2026, 11, 30),
                "Ann Packager <ann@nc.invalid> - 2:1.5-3",
                "- fix the greeting\n- keep | pipes and ``` fences",
            ),
            ChangelogEntry(noon(2026, 11, 1), "Bob <bob@nc.invalid> - 2:1.4-1", "- first build"),
        ),
        ("nc-plain", "3.0-7"): (
            ChangelogEntry(noon(2026, 11, 1), "Dan <dan@nc.invalid> - 3.0-7", "- plain start"),
        ),
    }
    key = read_packages(built.found)[0]  # no changelog: no entries, but the package is there
    assert read_changelogs(built.found, ["gpg-pubkey"]) == {("gpg-pubkey", key.evr): ()}
    # a sub-package carries its spec's changelog
    assert read_changelogs(built.found, ["libnc-sbom"]) == {
        ("libnc-sbom", "0.9-1"): logs[("nc-sbom", "2:1.5-3")]
    }
    assert read_changelogs(built.found, []) == {}
    assert read_changelogs(built.found, ["not-installed"]) == {}


def _layer(root: Path, files: dict[str, bytes | None], opaque: tuple[str, ...] = ()) -> Path:
    """An overlay layer directory: None is a whiteout (a 0:0 character device, as overlay
    makes it), `opaque` directories carry the opaque marker file."""
    root.mkdir(parents=True)
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        else:
            target.write_bytes(content)
    for directory in opaque:
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / ".wh..wh..opq").write_bytes(b"")
    return root


def test_overlay_entries_of_files_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    layer = _layer(
        tmp_path / "diff",
        {
            "usr/share/rpm/rpmdb.sqlite": b"db",
            "usr/share/rpm/rpmdb.sqlite-wal": None,  # overlay whiteout
            "usr/share/rpm/.wh.Packages": b"",  # tar-style whiteout
            "usr/share/rpm/sub/ignored": b"x",  # not directly in the database directory
            "var/lib/rpm/Packages": b"bdb",
            "etc/other": b"not a database file",
        },
        opaque=("var/lib/rpm",),
    )
    (layer / "usr/lib/sysimage").mkdir(parents=True)
    (layer / "usr/lib/sysimage/rpm").symlink_to("../../share/rpm")  # a link is not followed
    entries, opaque = overlay_entries(layer)
    assert entries == [
        Entry("usr/share/rpm", "Packages", None),
        Entry("usr/share/rpm", "rpmdb.sqlite", b"db"),
        Entry("usr/share/rpm", "rpmdb.sqlite-wal", None),
        Entry("var/lib/rpm", "Packages", b"bdb"),
    ]
    assert opaque == ["var/lib/rpm"]
    assert overlay_entries(_layer(tmp_path / "empty", {"etc/x": b""})) == ([], [])


def test_the_overlay_search_reads_layers_down_to_the_database(
    tmp_path: Path, built: BuiltDb
) -> None:
    sqlite = built.found.files["rpmdb.sqlite"]
    top = _layer(tmp_path / "top", {"usr/share/rpm/rpmdb.sqlite-shm": None, "etc/motd": b"hi"})
    middle = _layer(tmp_path / "middle", {"usr/share/rpm/rpmdb.sqlite": sqlite,
                                          "usr/share/rpm/rpmdb.sqlite-shm": b"old shm"})  # fmt: skip
    bottom = _layer(tmp_path / "bottom", {"usr/share/rpm/rpmdb.sqlite": b"older"})
    found, read = search_overlay([top, middle, bottom])
    assert (found, read) == (FoundDb("usr/share/rpm", "sqlite", {"rpmdb.sqlite": sqlite}), 2)
    assert found is not None and [p.name for p in read_packages(found)] == [
        "gpg-pubkey", "libnc-sbom", "nc-plain", "nc-sbom",
    ]  # fmt: skip
    # a layer that deleted the database and made its directory opaque hides the one below
    gone = _layer(tmp_path / "gone", {"usr/share/rpm/rpmdb.sqlite": None}, ("usr/share/rpm",))
    assert search_overlay([gone, middle]) == (None, 2)
    assert search_overlay([]) == (None, 0)
