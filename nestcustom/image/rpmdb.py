"""The packages of an RPM database directory, read with the host's rpm (`--dbpath`).

sqlite (rpm >= 4.16's default), ndb, and BerkeleyDB (EL8's rpm: a hash
`Packages` and btree indexes under /var/lib/rpm), which rpm >= 4.16 reads with
its read-only `bdb_ro` backend, without Berkeley DB's library.

Only headers are read; nothing in the image runs. Fields are separated by
ASCII unit and record separators, which no RPM header field holds, so names,
summaries and changelog texts pass through whatever they contain.
"""

from __future__ import annotations

import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.image.dblayers import FoundDb

UNIT, RECORD, GROUP = "\x1f", "\x1e", "\x1d"
GHOST = 64  # RPMFILE_GHOST in FILEFLAGS: listed, but its content is not in the package
MD5 = 1  # FILEDIGESTALGO when a header has none (rpm < 4.6 wrote md5 only; rpmfi's default)


@dataclass(frozen=True, order=True)
class Package:
    name: str
    arch: str
    epoch: int
    version: str
    release: str
    size: int = 0  # installed bytes

    @property
    def evr(self) -> str:
        return (f"{self.epoch}:" if self.epoch else "") + f"{self.version}-{self.release}"


@dataclass(frozen=True)
class ChangelogEntry:
    time: int  # seconds since the epoch (a day, as rpm keeps it)
    author: str  # "Name <mail> - 2.0-1", the line rpm shows after the date
    text: str


FileKind = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True)
class PackagedFile:
    path: str  # absolute, as the package lists it (`/usr/bin/x`)
    kind: FileKind
    digest: str  # hex, in the package's digest_algo; "" for anything but a regular file
    linkto: str  # a symlink's target; "" otherwise
    ghost: bool  # %ghost: listed, but the package carries no content for it


@dataclass(frozen=True)
class PackageFiles:
    name: str
    arch: str
    evr: str  # as Package.evr: the epoch only when it is not 0
    size: int  # installed bytes
    digest_algo: int  # OpenPGP hash algorithm id: 1 md5, 2 sha1, 8 sha256, 10 sha512 ...
    files: tuple[PackagedFile, ...]


def _rpm(db: Path, backend: str) -> list[str]:
    return [
        proc.require("rpm", "rpm"),
        "--dbpath",
        str(db),
        "--define",
        f"_db_backend {backend}",
    ]


def write_db(found: FoundDb, into: Path) -> Path:
    for name, content in found.files.items():
        (into / name).write_bytes(content)
    return into


def _query_all(found: FoundDb, query: str) -> proc.Result:
    """`rpm -qa --qf QUERY` on the database; a clear error when the host's rpm cannot."""
    with tempfile.TemporaryDirectory(prefix="nestcustom-rpmdb-") as tmp:
        db = write_db(found, Path(tmp))
        done = proc.run([*_rpm(db, found.backend), "-qa", "--qf", query], check=False, timeout=300)
    if done.returncode != 0:
        raise NestcustomError(
            f"the host's rpm cannot read the image's RPM database ({found.backend}, "
            f"{found.directory}): {done.stderr.strip()[-300:]}",
            "install an rpm that reads this database format (apt-get install rpm)",
        )
    return done


def read_packages(found: FoundDb) -> tuple[Package, ...]:
    """Every package the database holds."""
    query = UNIT.join(["%{NAME}", "%{ARCH}", "%{EPOCHNUM}", "%{VERSION}", "%{RELEASE}", "%{SIZE}"])
    done = _query_all(found, query + RECORD)
    packages = []
    for record in filter(None, done.stdout.split(RECORD)):
        name, arch, epoch, version, release, size = record.split(UNIT)
        packages.append(Package(name, arch, int(epoch or 0), version, release, int(size or 0)))
    return tuple(sorted(packages))


_PACKAGE_FIELDS = ("%{NAME}", "%{ARCH}", "%{EPOCHNUM}:%{VERSION}-%{RELEASE}", "%{LONGSIZE}")
# Only per-file arrays inside the iteration: a scalar there would have to be %{=NAME}.
_FILE_FIELDS = ("%{FILENAMES}", "%{FILEDIGESTS}", "%{FILEMODES}", "%{FILELINKTOS}", "%{FILEFLAGS}")
_FILES_QUERY = (
    UNIT.join([*_PACKAGE_FIELDS, "%{FILEDIGESTALGO}"])
    + RECORD
    + "["
    + UNIT.join(_FILE_FIELDS)
    + RECORD
    + "]"
    + GROUP
)


def read_files(found: FoundDb) -> tuple[PackageFiles, ...]:
    """Every package the database holds with the files it lists, sorted by (name, arch)."""
    done = _query_all(found, _FILES_QUERY)
    # File names are bytes to rpm: kept as the image's paths keep them (utf-8, and
    # surrogate escapes for anything else), so the two compare equal.
    text = done.raw_stdout.decode("utf-8", "surrogateescape")
    packages = []
    for group in filter(None, text.split(GROUP)):
        head, *records = group.split(RECORD)
        fields = head.split(UNIT)
        if len(fields) != 5 or records[-1:] != [""]:
            raise NestcustomError(
                f"the image's RPM database ({found.directory}) lists a package rpm's query "
                f"output cannot be split: {head[:100]!r}",
                "a package name or file name holding an ASCII control character (0x1d-0x1f)",
            )
        name, arch, evr, size, algo = fields
        files = tuple(_packaged_file(name, record) for record in records[:-1])
        packages.append(
            PackageFiles(
                name=name,
                arch=arch,
                evr=evr.removeprefix("0:"),
                size=int(size) if size.isdigit() else 0,
                digest_algo=int(algo) if algo.isdigit() else MD5,
                files=files,
            )
        )
    return tuple(sorted(packages, key=lambda p: (p.name, p.arch, p.evr)))


def _packaged_file(package: str, record: str) -> PackagedFile:
    fields = record.split(UNIT)
    if len(fields) != 5 or not fields[2].isdigit() or not fields[4].isdigit():
        raise NestcustomError(
            f"rpm's file list of {package} in the image's RPM database cannot be split: "
            f"{record[:100]!r}",
            "a file name holding an ASCII control character (0x1d-0x1f)",
        )
    path, digest, mode, linkto, flags = fields
    kind: FileKind = "other"
    if stat.S_ISREG(int(mode)):
        kind = "file"
    elif stat.S_ISDIR(int(mode)):
        kind = "dir"
    elif stat.S_ISLNK(int(mode)):
        kind = "symlink"
    return PackagedFile(path, kind, digest.lower(), linkto, bool(int(flags) & GHOST))


def read_changelogs(
    found: FoundDb, names: Sequence[str]
) -> dict[tuple[str, str], tuple[ChangelogEntry, ...]]:
    """(name, evr) -> its changelog, newest first, for the packages named."""
    if not names:
        return {}
    query = (
        "%{NAME}"
        + UNIT
        + "%{EPOCHNUM}:%{VERSION}-%{RELEASE}"
        + GROUP
        + "[%{CHANGELOGTIME}"
        + UNIT
        + "%{CHANGELOGNAME}"
        + UNIT
        + "%{CHANGELOGTEXT}"
        + RECORD
        + "]"
        + GROUP
    )
    with tempfile.TemporaryDirectory(prefix="nestcustom-rpmdb-") as tmp:
        db = write_db(found, Path(tmp))
        done = proc.run(
            [*_rpm(db, found.backend), "-q", "--qf", query, *sorted(set(names))],
            check=False,
            timeout=300,
        )
    logs: dict[tuple[str, str], tuple[ChangelogEntry, ...]] = {}
    parts = done.stdout.split(GROUP)
    for head, body in zip(parts[0::2], parts[1::2], strict=False):
        name, _, evr = head.partition(UNIT)
        evr = evr.removeprefix("0:")
        entries = []
        for record in filter(None, body.split(RECORD)):
            when, author, text = ([*record.split(UNIT), "", ""])[:3]
            if when.isdigit():
                entries.append(ChangelogEntry(int(when), author, text))
        logs[(name.strip(), evr)] = tuple(entries)
    return logs
