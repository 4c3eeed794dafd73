"""Which RPM package owns each entry of an image's custom part, as its final database says.

An entry is a package's only while it is exactly what the package installs: a regular
file whose content digest is the package's, a symbolic link with the package's target, a
directory the package lists as one. Edited configs, files a
scriptlet or recipe rewrote (`/etc/passwd` belongs to `setup`), `%ghost` files and
anything else are not package content: a package's chunk then depends only on the
package, never on what the recipe did to its files.

RPM names files by absolute paths as the running system sees them; the image holds them
relative, after the base's symbolic links (`/lib/x` is `usr/lib/x` when the base has
`lib -> usr/lib`). Only the base's links are followed: they are the layout rpm installed
into. The final name of a path is never followed (a package may ship the link itself).

Pure but for reading payloads from the spool, which only non-sha256 digests need.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from nestcustom.image.dblayers import BACKENDS, DB_DIRS, FoundDb
from nestcustom.image.rechunk.model import BaseIndex, CustomDiff, Member, Payload
from nestcustom.image.rpmdb import PackagedFile, PackageFiles

SHA256 = 8
# OpenPGP hash algorithm ids (RFC 4880 9.4), as rpm's FILEDIGESTALGO holds them.
HASHES = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
MAX_LINKS = 40  # symbolic links followed for one path, as Linux's MAXSYMLINKS
_BLOCK = 1 << 20


def find_db(diff: CustomDiff, spool: BinaryIO) -> FoundDb | None:
    """The RPM database the custom part wrote: the first of DB_DIRS (dblayers' order) whose
    main file the custom part holds, with every file it holds there. None when it wrote
    none (a recipe with only files: the base's database is the image's)."""
    held: dict[str, dict[str, Member]] = {}
    for member in diff.entries:
        directory, _, name = member.path.rpartition("/")
        if member.kind == "file" and directory in DB_DIRS:
            held.setdefault(directory, {})[name] = member
    for directory in DB_DIRS:
        members = held.get(directory, {})
        for main, backend in BACKENDS.items():
            if main in members:
                files = {name: _read(spool, m.payload) for name, m in sorted(members.items())}
                return FoundDb(directory, backend, files)
    return None


def assign(
    diff: CustomDiff, packages: Sequence[PackageFiles], spool: BinaryIO, base: BaseIndex
) -> dict[str, str]:
    """Entry path -> owner (`name.arch`) for the entries that are pristine package content;
    a path left out is not. Of several packages that install the same entry exactly, the
    smallest (name, arch) owns it: names and arches do not move when versions change."""
    entries = {member.path: member for member in diff.entries}
    resolve = _Resolver(base.symlinks)
    digests = _Digests(spool)
    owners: dict[str, str] = {}
    for package in sorted(packages, key=lambda p: (p.name, p.arch)):
        key = f"{package.name}.{package.arch}"
        for packaged in package.files:
            if packaged.ghost:
                continue
            path = resolve(packaged.path)
            if path is None or path in owners:  # taken by a smaller package already
                continue
            member = entries.get(path)
            if member is not None and _installs(packaged, member, package.digest_algo, digests):
                owners[path] = key
    return owners


def _installs(packaged: PackagedFile, member: Member, algo: int, digests: _Digests) -> bool:
    """Whether the entry is exactly what the package installs at its path."""
    if member.kind == "file" and packaged.kind == "file":
        return digests.of(member, algo) == packaged.digest
    if member.kind == "symlink" and packaged.kind == "symlink":
        return member.linkname == packaged.linkto
    return member.kind == "dir" and packaged.kind == "dir"


class _Digests:
    """Entries' content digests in a package's algorithm: sha256 as the reader computed
    it, the others hashed from the spool once each."""

    def __init__(self, spool: BinaryIO) -> None:
        self.spool = spool
        self.known: dict[tuple[str, int], str] = {}

    def of(self, member: Member, algo: int) -> str | None:
        if algo == SHA256 and member.sha256:
            return member.sha256
        name = HASHES.get(algo)
        if name is None:
            return None  # an algorithm this Python cannot check: nothing is proven
        key = (member.path, algo)
        if key not in self.known:
            self.known[key] = _hash(self.spool, member.payload, name)
        return self.known[key]


class _Resolver:
    """An RPM path -> the image path it lands on through the base's symbolic links."""

    def __init__(self, symlinks: Iterable[tuple[str, str]]) -> None:
        self.links = dict(symlinks)
        self.dirs: dict[str, str | None] = {}  # resolved directories: they hold many files

    def __call__(self, rpm_path: str) -> str | None:
        """None when the path's directory does not resolve (a loop of links)."""
        directory, _, name = rpm_path.strip("/").rpartition("/")
        if directory not in self.dirs:
            self.dirs[directory] = self._directory(directory)
        resolved = self.dirs[directory]
        if resolved is None:
            return None
        return f"{resolved}/{name}" if resolved else name

    def _directory(self, path: str) -> str | None:
        """`path` with its links replaced by their targets, left to right as the kernel
        does (a relative target starts in the link's directory; `..` goes up from where
        the walk is); None past MAX_LINKS links, as the kernel's ELOOP."""
        parts = path.split("/")
        done: list[str] = []
        followed = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                done = done[:-1]
                continue
            target = self.links.get("/".join([*done, part]))
            if target is None:
                done.append(part)
                continue
            followed += 1
            if followed > MAX_LINKS:
                return None
            if target.startswith("/"):
                done = []
            parts = target.split("/") + parts
        return "/".join(done)


def _read(spool: BinaryIO, payload: Payload | None) -> bytes:
    if payload is None:
        return b""
    spool.seek(payload.offset)
    return spool.read(payload.size)


def _hash(spool: BinaryIO, payload: Payload | None, name: str) -> str:
    digest = hashlib.new(name)
    if payload is not None:
        spool.seek(payload.offset)
        left = payload.size
        while left > 0:
            block = spool.read(min(left, _BLOCK))
            if not block:
                break  # a short spool: the digest then differs, and nothing is owned
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()
