"""Finding an image's RPM database in its layers, top layer first, reading no more than needed.

The database is a directory (`usr/share/rpm` on rpm-ostree systems,
`usr/lib/sysimage/rpm` on newer ones, `var/lib/rpm` in plain images) whose
main file is `rpmdb.sqlite` (sqlite), `Packages.db` (ndb) or `Packages`
(Berkeley DB). Layers are searched from the top; a file a higher layer holds
or deletes (a `.wh.` whiteout) hides the lower ones, as in the image's
filesystem. The search stops at the first layer that holds the main file:
what lower layers keep of that directory belonged to an older database
(sqlite ignores a write-ahead log whose salt does not match its database),
so no layer below it is read, and on a registry none is downloaded.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DB_DIRS = ("usr/share/rpm", "usr/lib/sysimage/rpm", "var/lib/rpm")
BACKENDS = {"rpmdb.sqlite": "sqlite", "Packages.db": "ndb", "Packages": "bdb_ro"}
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


@dataclass(frozen=True)
class Entry:
    """A file of a layer in a database directory: content, or None when deleted there."""

    directory: str
    name: str
    content: bytes | None


@dataclass(frozen=True)
class FoundDb:
    directory: str  # where the database lives in the image
    backend: str  # rpm's _db_backend for it
    files: dict[str, bytes]  # file name -> content


@dataclass
class DbSearch:
    """Layers fed from the top down until the database is complete."""

    seen: dict[str, dict[str, bytes | None]] = field(default_factory=dict)
    opaque: set[str] = field(default_factory=set)  # directories a layer hid from those below
    layers_read: int = 0

    def add_layer(
        self, entries: Iterable[Entry], opaque_dirs: Iterable[str] = ()
    ) -> FoundDb | None:
        """Add one layer (the next lower one); the database once its main file is known."""
        self.layers_read += 1
        for entry in entries:
            if entry.directory in self.opaque:
                continue
            self.seen.setdefault(entry.directory, {}).setdefault(entry.name, entry.content)
        self.opaque.update(opaque_dirs)
        for directory in DB_DIRS:
            files = self.seen.get(directory, {})
            for main, backend in BACKENDS.items():
                if files.get(main) is not None:
                    kept = {n: c for n, c in files.items() if c is not None}
                    return FoundDb(directory, backend, kept)
        return None


def _split(path: str) -> tuple[str, str] | None:
    """(database directory, file name) when `path` is directly in one, else None."""
    path = path.removeprefix("./").lstrip("/")
    directory, _, name = path.rpartition("/")
    return (directory, name) if directory in DB_DIRS and name else None


def tar_entries(stream: IO[bytes]) -> tuple[list[Entry], list[str]]:
    """The database entries of one layer tar (read to its end; gzip or plain)."""
    entries: list[Entry] = []
    opaque: list[str] = []
    with tarfile.open(fileobj=stream, mode="r|*") as archive:
        for member in archive:
            place = _split(member.name)
            if place is None:
                continue
            directory, name = place
            if name == OPAQUE:
                opaque.append(directory)
            elif name.startswith(WHITEOUT):
                entries.append(Entry(directory, name.removeprefix(WHITEOUT), None))
            elif member.isfile():
                handle = archive.extractfile(member)
                entries.append(Entry(directory, name, handle.read() if handle else b""))
    return entries, opaque


def overlay_entries(diff_dir: Path) -> tuple[list[Entry], list[str]]:
    """The database entries of one overlay layer directory (podman's local storage)."""
    entries: list[Entry] = []
    opaque: list[str] = []
    for directory in DB_DIRS:
        where = diff_dir / directory
        if where.is_symlink() or not where.is_dir():
            continue
        if any(_has_xattr(where, key) for key in _OPAQUE_XATTRS) or (where / OPAQUE).exists():
            opaque.append(directory)
        for item in sorted(where.iterdir()):
            info = item.lstat()
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:  # overlay's whiteout
                entries.append(Entry(directory, item.name, None))
            elif item.name == OPAQUE:
                continue  # the marker of an opaque directory (above), no database file
            elif item.name.startswith(WHITEOUT):
                entries.append(Entry(directory, item.name.removeprefix(WHITEOUT), None))
            elif stat.S_ISREG(info.st_mode):
                entries.append(Entry(directory, item.name, item.read_bytes()))
    return entries, opaque


def _has_xattr(path: Path, key: str) -> bool:
    try:
        return os.getxattr(path, key, follow_symlinks=False) == b"y"
    except OSError:
        return False


def search_overlay(diff_dirs: Iterable[Path]) -> tuple[FoundDb | None, int]:
    """The database in layers given top first; and how many layers were looked at."""
    search = DbSearch()
    for diff_dir in diff_dirs:
        found = search.add_layer(*overlay_entries(diff_dir))
        if found is not None:
            return found, search.layers_read
    return None, search.layers_read
