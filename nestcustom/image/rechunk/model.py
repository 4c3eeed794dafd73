"""The data a rechunk passes from step to step: layer members, the squashed custom part.

A member is one entry of a layer tar after reading: its path (relative, no leading `./`
or `/`, no trailing `/`), what it is and its metadata. Its content is not held here but
in a spool file the reader writes (`Payload`), so an image's custom part never has to fit
in memory. OCI's whiteouts arrive as members too: `whiteout` deletes `path` (the tar's
`.wh.NAME`), `opaque` hides what lower layers hold under the directory `path` (the tar's
`path/.wh..wh..opq`); their own metadata is the tar header's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["file", "dir", "symlink", "hardlink", "char", "block", "fifo", "whiteout", "opaque"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_NAME = ".wh..wh..opq"


@dataclass(frozen=True)
class Payload:
    """Where a regular file's bytes are in the spool file."""

    offset: int
    size: int


@dataclass(frozen=True)
class Member:
    path: str
    kind: Kind
    mode: int  # permission bits with setuid, setgid and sticky (0o7777)
    uid: int
    gid: int
    mtime: int
    linkname: str = ""  # a symlink's target; a hardlink's target path in the same layer
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()  # sorted by name
    payload: Payload | None = None  # regular files only
    sha256: str = ""  # of the payload, hex; regular files only
    # Names of one file share it (squash sets it; "" for a file with one name). Writers
    # keep such names in one chunk and write one of them with the data, the rest as links.
    inode: str = ""

    @property
    def size(self) -> int:
        return self.payload.size if self.payload else 0


@dataclass(frozen=True)
class BaseIndex:
    """What the base image holds, as far as rechunking needs it: every path, which of them
    are directories, and its symbolic links (path -> target as written), through which
    RPM's paths reach the image's (`lib` -> `usr/lib`)."""

    paths: frozenset[str]
    dirs: frozenset[str]
    symlinks: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CustomDiff:
    """The custom layers squashed into one difference from the base.

    `entries`: every path the custom part adds or changes, with its final metadata, sorted.
    `deletions`: whiteouts of base paths the custom part removes.
    `opaque`: base directories whose base contents the custom part hides (a directory
    removed and made again); each is also in `entries` as the directory it now is.
    `writers`: for each entry's path, the custom layers (0 = lowest) that wrote it.
    """

    entries: tuple[Member, ...]
    deletions: tuple[Member, ...]
    opaque: tuple[Member, ...]
    writers: tuple[tuple[str, tuple[int, ...]], ...]


def path_key(path: str) -> tuple[str, ...]:
    """Sort order of paths: by components, so a directory comes right before its contents
    (`a/b` before `a.b`, which plain string order gets wrong)."""
    return tuple(path.split("/"))


def is_under(path: str, top: str) -> bool:
    """Whether `path` is strictly inside the directory `top`."""
    return path.startswith(top + "/")


def ancestors(path: str) -> list[str]:
    """`a/b/c` -> [`a`, `a/b`]."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
