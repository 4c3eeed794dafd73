"""One chunk as a canonical layer tar: the same members give the same bytes, in any order.

A chunk's layer digest is what hosts and registries cache by, so every byte must follow
from the members alone:
- Entries go in `path_key` order, so a directory comes before what it holds (extractors
  need the parent) and the order given does not matter.
- Python's tarfile, PAX format, UTF-8: POSIX has no other way to carry long paths and
  xattrs. A name that is not UTF-8 (read with surrogateescape) goes back as the very bytes
  it was: in PAX, tarfile writes such values raw under `hdrcharset=BINARY` whatever its
  `errors` (set to surrogateescape here only to say so).
- Numeric ids only (empty uname/gname), the member's integer mtime, no atime or ctime
  records: names and clocks of the machine that writes the tar must not show.
- xattrs as `SCHILY.xattr.<name>` records in name order (tarfile writes records in dict
  order). A value that is not UTF-8 (a binary `security.capability`) makes tarfile write
  `hdrcharset=BINARY` and the raw bytes, as Go's archive/tar in c/storage does.
- The mode is the member's, setuid, setgid and sticky included; device numbers are
  written for character and block devices only (tarfile leaves them blank otherwise).
- Whiteouts and opaque markers are OCI's empty files `.wh.NAME` and `DIR/.wh..wh..opq`;
  the marker goes right after its directory's entry, as c/storage writes it, so that
  the directory exists when an extractor meets it.
- Names of one file (same `inode`) are one entry with the data and tar hardlinks to it.
  A tar hardlink may only name an earlier entry, so a name that sorts before the one with
  the data follows it directly. The data goes on a name outside `sysroot/`, which
  ostree-ext 0.9.1 hosts filter away: a link into a filtered path would break there.
- The end is tarfile's: two zero blocks, padded to the 10240-byte record.
Directories are written as `path/`: tarfile adds the slash to every directory name
(`TarInfo.get_info`), which is also what podman's layers hold (c/storage v1.43.0
`pkg/archive/archive.go` `canonicalTarName`) and what GNU tar writes.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from nestcustom.image.rechunk.model import OPAQUE_NAME, WHITEOUT_PREFIX, Member, path_key

COPY_BLOCK = 1 << 20  # bytes of file content held at once
_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "whiteout": tarfile.REGTYPE,
    "opaque": tarfile.REGTYPE,
}


@dataclass(frozen=True)
class WrittenTar:
    diff_id: str  # "sha256:<hex>" of the bytes written: the layer's diff_id
    size: int  # bytes written


def write_chunk(members: Sequence[Member], spool: BinaryIO, out: BinaryIO) -> WrittenTar:
    """Write the layer tar of `members` to `out`; file contents are read from `spool`."""
    sink = _HashingSink(out)
    with tarfile.open(
        fileobj=sink,  # type: ignore[call-overload]
        mode="w",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
        copybufsize=COPY_BLOCK,
    ) as tar:
        for member, tar_path, linkname in _ordered(members):
            info = _header(member, tar_path, linkname)
            if info.type == tarfile.REGTYPE and info.size:
                tar.addfile(info, _Slice(spool, member))
            else:
                tar.addfile(info)
    return WrittenTar(diff_id=f"sha256:{sink.sha.hexdigest()}", size=sink.size)


def _tar_path(member: Member) -> tuple[str, ...]:
    """The entry's name in the tar, as path components."""
    parts = path_key(member.path)
    if member.kind == "whiteout":
        return (*parts[:-1], WHITEOUT_PREFIX + parts[-1])
    if member.kind == "opaque":
        return (*parts, OPAQUE_NAME)
    return parts


def _ordered(members: Sequence[Member]) -> list[tuple[Member, str, str]]:
    """(member, name in the tar, hardlink target or "") in the order they are written."""
    dirs = {m.path for m in members if m.kind == "dir"}
    names: dict[tuple[str, ...], Member] = {}
    groups: dict[str, list[Member]] = {}
    for member in members:
        if member.kind not in _TYPES:
            raise ValueError(f"{member.path}: cannot write a {member.kind!r} member to a chunk")
        if member.kind == "opaque" and member.path not in dirs:
            raise ValueError(
                f"{member.path}: opaque marker without the directory's own entry in the chunk"
            )
        if member.inode:
            if member.kind != "file":
                raise ValueError(f"{member.path}: a {member.kind} cannot share an inode")
            groups.setdefault(member.inode, []).append(member)
        key = _tar_path(member)
        if key in names:
            raise ValueError(f"{member.path}: given twice")
        names[key] = member

    def sort_key(member: Member) -> tuple[str, ...]:
        # An opaque marker sorts right after its directory: no name is the empty string.
        return (*path_key(member.path), "") if member.kind == "opaque" else _tar_path(member)

    primary: dict[str, Member] = {}  # inode -> the name written with the data
    for inode, group in groups.items():
        group.sort(key=sort_key)
        outside = [m for m in group if not m.path.startswith("sysroot/")]
        primary[inode] = (outside or group)[0]
    ordered = sorted(members, key=sort_key)
    written: list[tuple[Member, str, str]] = []
    for member in ordered:
        first = primary.get(member.inode) if member.inode else None
        if first is not None and first is not member:
            if sort_key(member) > sort_key(first):  # else it went right after `first`
                written.append((member, member.path, first.path))
            continue
        written.append((member, "/".join(_tar_path(member)), ""))
        if first is member:
            early = [m for m in groups[member.inode] if sort_key(m) < sort_key(member)]
            written.extend((m, m.path, member.path) for m in early)
    return written


def _header(member: Member, tar_path: str, hardlink: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(tar_path)
    if member.kind in ("whiteout", "opaque"):
        # OCI's markers: empty files, and nothing of their own a host would see. Their
        # header is fixed: overlay storage gives a whiteout the time podman made it, so a
        # header copied from it would change on every build (tests/image/
        # test_rechunk_universe.py saw the deletions chunk change with nothing deleted).
        info.type, info.mode, info.mtime = tarfile.REGTYPE, 0, 0
        return info
    info.mode = member.mode
    info.uid, info.gid = member.uid, member.gid  # uname and gname stay TarInfo's ""
    info.mtime = member.mtime
    info.pax_headers = {
        f"SCHILY.xattr.{name}": value.decode("utf-8", "surrogateescape")
        for name, value in sorted(member.xattrs)
    }
    if hardlink:
        info.type, info.linkname = tarfile.LNKTYPE, hardlink
        return info
    info.type = _TYPES[member.kind]
    if member.kind == "symlink":
        info.linkname = member.linkname
    elif member.kind in ("char", "block"):
        info.devmajor, info.devminor = member.devmajor, member.devminor
    elif member.kind == "file":
        info.size = member.size
    return info


class _HashingSink:
    """`out` as tarfile sees it: every byte written is hashed and counted on the way."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        written = self.out.write(data)
        if written != len(data):
            raise OSError(f"short write: {written} of {len(data)} bytes")
        self.sha.update(data)
        self.size += len(data)
        return written

    def tell(self) -> int:  # tarfile asks where the archive starts
        return self.size


class _Slice:
    """A file's content in the spool, read in blocks; a short spool is the caller's error."""

    def __init__(self, spool: BinaryIO, member: Member) -> None:
        assert member.payload is not None
        self.spool, self.path = spool, member.path
        self.offset, self.left, self.size = member.payload.offset, member.size, member.size

    def read(self, limit: int) -> bytes:
        self.spool.seek(self.offset)
        block = b""
        while len(block) < min(limit, self.left):
            more = self.spool.read(min(limit, self.left) - len(block))
            if not more:
                raise ValueError(
                    f"{self.path}: the spool holds {self.size - self.left + len(block)} "
                    f"of its {self.size} bytes"
                )
            block += more
        self.offset += len(block)
        self.left -= len(block)
        return block
