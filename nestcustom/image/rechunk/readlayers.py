"""Reading a built image's layers from podman's docker-archive export, in one pass.

The export (c/image `docker/internal/tarfile/writer.go`) holds each distinct layer once, as
the uncompressed tar `<diff id hex>.tar` that storage keeps: the bytes a push compresses. So
the layers read here are the ones hosts would get, not a re-creation from a mounted tree
(which loses what overlay does not show, such as whiteouts' own headers).

- The custom layers' members become `Member`s; regular files' bytes go to a spool file
  (never all in memory) with their sha256, which ownership checks against RPM's digests.
- The base's layers give only an index (paths, directories, symbolic links) and their sizes
  (an OCI archive that names a layer storage already holds needs its exact size).
Every layer's sha256 is checked against its diff id while it streams past: a mismatch
means the export is not what storage holds, and nothing built on it could be trusted.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, cast

from nestcustom.image.rechunk.model import (
    OPAQUE_NAME,
    WHITEOUT_PREFIX,
    BaseIndex,
    Kind,
    Member,
    Payload,
    is_under,
)

_LAYER_FILE = re.compile(r"^([0-9a-f]{64})\.tar$")
_KINDS: dict[bytes, Kind] = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}
_XATTR = "SCHILY.xattr."
BLOCK = 1 << 20


class LayerReadError(ValueError):
    """The export is not what the image's inspection said it would be."""


@dataclass(frozen=True)
class ImageLayers:
    custom: tuple[tuple[Member, ...], ...]  # the custom layers' members, lowest layer first
    base: BaseIndex
    base_sizes: tuple[int, ...]  # bytes of each base layer tar, in the base's order
    config: bytes  # the image's config, as stored (its sha256 is the image ID)


def read_export(
    archive: IO[bytes],
    image_id: str,
    diff_ids: Sequence[str],
    base_layers: int,
    spool: IO[bytes],
) -> ImageLayers:
    """`diff_ids`: the image's `RootFS.Layers`; the first `base_layers` are the base's."""
    base_ids, custom_ids = diff_ids[:base_layers], diff_ids[base_layers:]
    parsed: dict[str, tuple[Member, ...]] = {}
    sizes: dict[str, int] = {}
    config = b""
    try:
        with tarfile.open(fileobj=archive, mode="r|", errorlevel=2) as outer:
            for item in outer:
                match = _LAYER_FILE.match(item.name)
                if item.isfile() and item.name == f"{image_id}.json":
                    handle = outer.extractfile(item)
                    config = handle.read() if handle else b""
                if not item.isfile() or match is None:
                    continue
                diff_id = f"sha256:{match[1]}"
                if diff_id not in diff_ids or diff_id in parsed:
                    continue
                stream = outer.extractfile(item)
                if stream is None:
                    raise LayerReadError(f"layer {diff_id} has no content in the export")
                checked = _Hashing(stream)
                # Base layers are read for their index only: their files are not spooled.
                parsed[diff_id] = tuple(
                    parse_layer(cast(IO[bytes], checked), spool if diff_id in custom_ids else None)
                )
                checked.drain()
                if checked.digest() != diff_id:
                    raise LayerReadError(f"layer {diff_id} reads back as {checked.digest()}")
                sizes[diff_id] = checked.size
    except (tarfile.TarError, EOFError) as exc:  # cut short: podman stopped mid-stream
        raise LayerReadError(f"podman's export of {image_id[:12]} is not whole: {exc}") from exc
    missing = [d for d in diff_ids if d not in parsed]
    if missing:
        raise LayerReadError(f"the export lacks layer(s) {', '.join(missing)}")
    if hashlib.sha256(config).hexdigest() != image_id:
        raise LayerReadError(f"the export lacks the config of {image_id[:12]}")
    return ImageLayers(
        custom=tuple(parsed[d] for d in custom_ids),
        base=index(parsed[d] for d in base_ids),
        base_sizes=tuple(sizes[d] for d in base_ids),
        config=config,
    )


def parse_layer(stream: IO[bytes], spool: IO[bytes] | None) -> list[Member]:
    """The members of one layer tar, in order; with `spool`, file bytes copied into it."""
    members = []
    with tarfile.open(
        fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape", errorlevel=2
    ) as layer:
        for info in layer:
            path = _clean(info.name)
            if not path:
                continue  # the root directory itself: its metadata is the base's
            payload, sha = None, ""
            if info.isfile() and spool is not None:
                handle = layer.extractfile(info)
                payload, sha = _spool(handle, info.size, spool)
            members.append(_member(info, path, payload, sha))
    return members


def _member(info: tarfile.TarInfo, path: str, payload: Payload | None, sha: str) -> Member:
    head, _, name = path.rpartition("/")
    kind = _KINDS.get(info.type, "file")
    if name == OPAQUE_NAME:
        path, kind = head, "opaque"
    elif name.startswith(WHITEOUT_PREFIX):
        path, kind = f"{head}/{name[len(WHITEOUT_PREFIX) :]}".lstrip("/"), "whiteout"
    xattrs = tuple(
        sorted(
            (key[len(_XATTR) :], value.encode("utf-8", "surrogateescape"))
            for key, value in info.pax_headers.items()
            if key.startswith(_XATTR)
        )
    )
    return Member(
        path=path,
        kind=kind,
        mode=info.mode & 0o7777,
        uid=info.uid,
        gid=info.gid,
        mtime=int(info.mtime),
        linkname=_clean(info.linkname) if kind == "hardlink" else info.linkname,
        devmajor=info.devmajor if kind in ("char", "block") else 0,
        devminor=info.devminor if kind in ("char", "block") else 0,
        xattrs=xattrs,
        payload=payload if kind == "file" else None,
        sha256=sha if kind == "file" else "",
    )


def _clean(name: str) -> str:
    """`./usr/bin/` -> `usr/bin`; refuses names that climb out of the image."""
    path = name.removeprefix("./").strip("/")
    if path in ("", "."):
        return ""
    if ".." in path.split("/"):
        raise LayerReadError(f"a layer names {name!r}, outside the image")
    return path


def _spool(handle: IO[bytes] | None, size: int, spool: IO[bytes]) -> tuple[Payload, str]:
    offset = spool.seek(0, 2)
    digest = hashlib.sha256()
    left = size
    while left and handle is not None:
        block = handle.read(min(BLOCK, left))
        if not block:
            break
        spool.write(block)
        digest.update(block)
        left -= len(block)
    if left:
        raise LayerReadError(f"a layer's file ends {left} bytes early")
    return Payload(offset, size), digest.hexdigest()


def index(layers: Iterable[Iterable[Member]]) -> BaseIndex:
    """What the base's layers show, applied in order (whiteouts included)."""
    kinds: dict[str, str] = {}
    links: dict[str, str] = {}

    def remove(top: str, itself: bool) -> None:
        for path in [p for p in kinds if is_under(p, top) or (itself and p == top)]:
            del kinds[path]
            links.pop(path, None)

    for layer in layers:
        members = list(layer)
        for m in members:
            if m.kind in ("whiteout", "opaque"):
                remove(m.path, itself=m.kind == "whiteout")
        for m in members:
            if m.kind in ("whiteout", "opaque"):
                continue
            if m.kind != "dir" and kinds.get(m.path) == "dir":
                remove(m.path, itself=False)  # a file in place of a directory hides its contents
            kinds[m.path] = "file" if m.kind == "hardlink" else m.kind
            if m.kind == "symlink":
                links[m.path] = m.linkname
            else:
                links.pop(m.path, None)
    return BaseIndex(
        paths=frozenset(kinds),
        dirs=frozenset(p for p, k in kinds.items() if k == "dir"),
        symlinks=tuple(sorted(links.items())),
    )


class _Hashing:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(BLOCK):
            pass

    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"
