"""The packages of an RPM database directory, read with the host's rpm (`--dbpath`).

sqlite (rpm >= 4.16's default), ndb, and BerkeleyDB (EL8's rpm: a hash
`Packages` and btree indexes under /var/lib/rpm), which rpm >= 4.16 reads with
its read-only `bdb_ro` backend, without Berkeley DB's library.

Only headers are read; nothing in the image runs. Fields are separated by
ASCII unit and record separators, which no RPM header field holds, so names,
summaries and changelog texts pass through whatever they contain.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.image.dblayers import FoundDb

UNIT, RECORD, GROUP = "\x1f", "\x1e", "\x1d"


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


def read_packages(found: FoundDb) -> tuple[Package, ...]:
    """Every package the database holds."""
    query = UNIT.join(["%{NAME}", "%{ARCH}", "%{EPOCHNUM}", "%{VERSION}", "%{RELEASE}", "%{SIZE}"])
    with tempfile.TemporaryDirectory(prefix="nestcustom-rpmdb-") as tmp:
        db = write_db(found, Path(tmp))
        done = proc.run(
            [*_rpm(db, found.backend), "-qa", "--qf", query + RECORD],
            check=False,
            timeout=300,
        )
    if done.returncode != 0:
        raise NestcustomError(
            f"the host's rpm cannot read the image's RPM database ({found.backend}, "
            f"{found.directory}): {done.stderr.strip()[-300:]}",
            "install an rpm that reads this database format (apt-get install rpm)",
        )
    packages = []
    for record in filter(None, done.stdout.split(RECORD)):
        name, arch, epoch, version, release, size = record.split(UNIT)
        packages.append(Package(name, arch, int(epoch or 0), version, release, int(size or 0)))
    return tuple(sorted(packages))


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
