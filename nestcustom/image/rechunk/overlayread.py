"""Reading an image's layers in place, from podman's overlay storage: the fast path.

The export (readlayers.py) makes podman write the whole image, base included, to a file
before the first byte arrives: about 3 s for the 260 MB test base, more for a real NestOS
one. Rootful podman on overlay (this project's builds) keeps each layer as a directory
(`GraphDriver.Data`: `UpperDir` is the top layer, `LowerDir` the others, top first), so
the custom layers can be read where they are, and the base's paths indexed once per base.

Overlay keeps what a layer tar says in its own way, turned back here as c/storage does
when it makes the tar (`pkg/archive/archive_linux.go`): a whiteout is a character device
0/0, an opaque directory has the xattr `trusted.overlay.opaque=y`; hardlinks are one
inode; the xattrs a tar carries are `security.capability` and `user.*`. The config comes
from the image store (`overlay-images/<id>/`, keyed by base64 of `sha256:<id>`), and is
used only if its sha256 is the image ID; anything unexpected returns None, and the step
reads the export instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from nestcustom.image.rechunk.model import (
    OPAQUE_NAME,
    WHITEOUT_PREFIX,
    BaseIndex,
    Kind,
    Member,
    Payload,
)
from nestcustom.image.rechunk.readlayers import ImageLayers, index

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_KEPT_XATTRS = ("security.capability",)
_PARTIAL_XATTRS = ("trusted.overlay.metacopy", "trusted.overlay.redirect")
BLOCK = 1 << 20
# Part of a cached base index's name: a change to what an index holds must not meet an
# older file (the export, which is never cached, would index the same base anew).
INDEX_FORMAT = "index-1"


def layer_dirs(attrs: dict[str, Any]) -> list[Path] | None:
    """The image's layer directories, lowest first, if it is in local overlay storage."""
    driver = attrs.get("GraphDriver") or {}
    data = driver.get("Data") or {}
    if driver.get("Name") != "overlay" or not data.get("UpperDir"):
        return None
    top_down = [data["UpperDir"], *(p for p in str(data.get("LowerDir") or "").split(":") if p)]
    dirs = [Path(p) for p in reversed(top_down)]
    layers = (attrs.get("RootFS") or {}).get("Layers") or []
    if len(dirs) != len(layers) or not all(d.is_dir() for d in dirs):
        return None
    return dirs


def stored_config(attrs: dict[str, Any], upper: Path) -> bytes | None:
    """The image's config as the store keeps it; None unless its sha256 is the image ID."""
    image_id = str(attrs.get("Id", ""))
    key = base64.b64encode(f"sha256:{image_id}".encode()).decode()
    # <graph root>/overlay/<layer>/diff -> <graph root>/overlay-images/<id>/=<key>
    path = upper.parents[2] / "overlay-images" / image_id / f"={key}"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == image_id else None


def read_stored(
    attrs: dict[str, Any],
    base_layers: int,
    base_sizes: Sequence[int],
    spool: IO[bytes],
    cache: Path | None,
) -> ImageLayers | None:
    """The image's layers read in place; None where storage is not as expected."""
    if os.geteuid() != 0:
        # Rootless storage keeps a container's root as the user's own id on disk, and files
        # the user may not read: only podman's export says what such a layer holds.
        return None
    try:
        dirs = layer_dirs(attrs)
        if dirs is None or len(base_sizes) != base_layers:
            return None
        config = stored_config(attrs, dirs[-1])
        if config is None:
            return None
        diff_ids = (attrs.get("RootFS") or {}).get("Layers") or []
        return ImageLayers(
            custom=tuple(tuple(read_dir(d, spool)) for d in dirs[base_layers:]),
            base=base_index(dirs[:base_layers], diff_ids[:base_layers], cache),
            base_sizes=tuple(base_sizes),
            config=config,
        )
    except (NotPlainOverlay, OSError):
        # Also a directory pruned while it was read: what was spooled is never referenced.
        return None


def base_index(dirs: Sequence[Path], diff_ids: Sequence[str], cache: Path | None) -> BaseIndex:
    """The base's paths, walked once per base (its layers' diff ids name the cache file)."""
    key = hashlib.sha256(" ".join([INDEX_FORMAT, *diff_ids]).encode()).hexdigest()
    where = cache / f"base-{key}.json" if cache else None
    if where is not None and where.is_file():
        try:
            saved = json.loads(where.read_text())
            return BaseIndex(
                frozenset(saved["paths"]),
                frozenset(saved["dirs"]),
                tuple((a, b) for a, b in saved["symlinks"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache file: walk again and write it anew
    found = index(read_dir(d, None) for d in dirs)
    if where is not None:
        where.parent.mkdir(parents=True, exist_ok=True)
        part = where.with_suffix(f".{os.getpid()}.part")
        part.write_text(
            json.dumps(
                {
                    "paths": sorted(found.paths),
                    "dirs": sorted(found.dirs),
                    "symlinks": found.symlinks,
                }
            )
        )
        part.replace(where)
    return found


def read_dir(top: Path, spool: IO[bytes] | None) -> Iterator[Member]:
    """One layer directory's members, parents first; with `spool`, file bytes copied in."""
    first_name: dict[tuple[int, int], str] = {}
    for folder, names, files in os.walk(top, onerror=_fail):  # never skip a directory
        names.sort()
        here = Path(folder)
        relative = here.relative_to(top).as_posix()
        for name in sorted([*names, *files]):
            path = name if relative == "." else f"{relative}/{name}"
            yield from _members(here / name, path, spool, first_name)


def _fail(error: OSError) -> None:
    raise error


def _members(
    where: Path, path: str, spool: IO[bytes] | None, first_name: dict[tuple[int, int], str]
) -> Iterator[Member]:
    info = os.lstat(where)
    mode = info.st_mode
    head, _, name = path.rpartition("/")
    plain = Member(path, "file", stat.S_IMODE(mode), info.st_uid, info.st_gid, int(info.st_mtime))
    if stat.S_ISCHR(mode) and info.st_rdev == 0:
        yield replace(plain, kind="whiteout")
        return
    if name == OPAQUE_NAME:
        yield replace(plain, path=head, kind="opaque")
        return
    if name.startswith(WHITEOUT_PREFIX):
        gone = f"{head}/{name[len(WHITEOUT_PREFIX) :]}".lstrip("/")
        yield replace(plain, path=gone, kind="whiteout")
        return
    if spool is not None:  # an index needs no xattrs: spare the two calls per path
        plain = replace(plain, xattrs=_xattrs(where))
    if stat.S_ISDIR(mode):
        yield replace(plain, kind="dir")
        if any(_xattr(where, key) == b"y" for key in _OPAQUE_XATTRS):
            yield replace(plain, kind="opaque", xattrs=())
        return
    if stat.S_ISREG(mode) and info.st_nlink > 1:
        inode = (info.st_dev, info.st_ino)
        if inode in first_name:
            yield replace(plain, kind="hardlink", linkname=first_name[inode])
            return
        first_name[inode] = path
    if stat.S_ISREG(mode):
        payload, sha = _spool(where, spool) if spool is not None else (None, "")
        yield replace(plain, payload=payload, sha256=sha)
    elif stat.S_ISLNK(mode):
        yield replace(plain, kind="symlink", linkname=str(where.readlink()))
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind: Kind = "char" if stat.S_ISCHR(mode) else "block"
        major, minor = os.major(info.st_rdev), os.minor(info.st_rdev)
        yield replace(plain, kind=kind, devmajor=major, devminor=minor)
    elif stat.S_ISFIFO(mode):
        yield replace(plain, kind="fifo")
    # A socket: c/storage leaves it out of layers too.


class NotPlainOverlay(Exception):
    """A layer directory overlay's metacopy or redirect_dir features wrote: its files are
    not all there, so only podman's own diff (the export) tells what the layer holds."""


def _xattrs(where: Path) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(where, follow_symlinks=False)
    except OSError:
        return ()
    if any(n in _PARTIAL_XATTRS for n in names):
        raise NotPlainOverlay(str(where))
    kept = [
        n
        for n in names
        if n in _KEPT_XATTRS or (n.startswith("user.") and not n.startswith("user.overlay."))
    ]
    return tuple(sorted((n, v) for n in kept if (v := _xattr(where, n)) is not None))


def _xattr(where: Path, key: str) -> bytes | None:
    try:
        return os.getxattr(where, key, follow_symlinks=False)
    except OSError:
        return None


def _spool(where: Path, spool: IO[bytes]) -> tuple[Payload, str]:
    offset = spool.seek(0, 2)
    digest = hashlib.sha256()
    size = 0
    with where.open("rb") as source:
        while block := source.read(BLOCK):
            spool.write(block)
            digest.update(block)
            size += len(block)
    return Payload(offset, size), digest.hexdigest()
