"""A few files of a pushed image, read from its layers in the registry, not pulled.

Layers are read from the top down, each streamed through tar (gzip or plain, as
the registry sends it) and never stored; reading stops at the first layer after
which every wanted file is settled. A file is settled by the highest layer that
names it: its content, or its absence when that layer whites it out
(`.wh.NAME`), hides its directory (`.wh..wh..opq`) or puts something else than
a directory on one of its parents (the OCI image layer rules). A wanted
directory (every regular file directly in it) is settled only by such a hiding,
else by the bottom layer, unless the caller's `enough` says what it has already
decides its question.
"""

from __future__ import annotations

import json
import platform
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import BinaryIO

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.image.distribution import Repository

Layer = Callable[[], AbstractContextManager[BinaryIO]]  # opens one layer's (compressed) tar stream
MAX_FILE = 1 << 20  # trust files are small; a bigger one is not read into memory
_INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _normal(name: str) -> str:
    return posixpath.normpath("/" + name.lstrip("/"))


def _ancestors(path: str) -> Iterator[str]:
    while path != "/":
        yield path
        path = posixpath.dirname(path)


class _Walk:
    """What the layers read so far settle, top down."""

    def __init__(self, paths: Iterable[str], directories: Iterable[str]) -> None:
        self.paths = {_normal(p) for p in paths}
        self.directories = {_normal(d) for d in directories}
        wanted = self.paths | {d + "/x" for d in self.directories}
        self.parents = {a for w in wanted for a in _ancestors(posixpath.dirname(w))}
        self.found: dict[str, bytes] = {}
        self.decided: set[str] = set()  # named by a higher layer (found, or not a regular file)
        self.hidden: set[str] = set()  # paths whose lower-layer contents no longer show

    def is_hidden(self, path: str) -> bool:
        return any(a in self.hidden for a in _ancestors(path))

    def settled(self) -> bool:
        return all(p in self.decided or self.is_hidden(p) for p in self.paths) and all(
            self.is_hidden(d) for d in self.directories
        )

    def layer(self, stream: BinaryIO, where: str) -> None:
        hiding: set[str] = set()  # a layer's whiteouts act on the layers below it only
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for member in tar:
                    name = _normal(member.name)
                    parent, base = posixpath.split(name)
                    if base == ".wh..wh..opq":
                        hiding.add(parent)
                        continue
                    if base.startswith(".wh."):
                        hiding.add(posixpath.join(parent, base[4:]))
                        continue
                    if self.is_hidden(name):
                        continue
                    if name in self.parents and not member.isdir():
                        hiding.add(name)  # a file or link where a wanted path's directory was
                    wanted = name in self.paths or parent in self.directories
                    if not wanted or name in self.decided:
                        continue
                    self.decided.add(name)
                    if member.isfile() and member.size <= MAX_FILE:
                        data = tar.extractfile(member)
                        if data is not None:
                            self.found[name] = data.read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise NestcustomError(
                f"{where}: not a readable tar layer ({exc})",
                "layers must be tar or tar+gzip (zstd layers are not read here)",
            ) from exc
        self.hidden |= hiding


def read_files(
    layers: Sequence[Layer],
    *,
    paths: Iterable[str] = (),
    directories: Iterable[str] = (),
    enough: Callable[[Mapping[str, bytes]], bool] | None = None,
) -> dict[str, bytes]:
    """The wanted regular files (absolute path: content) of the image whose layers are
    `layers`, top layer first; a wanted file the image does not hold is not in the result."""
    walk = _Walk(paths, directories)
    for number, opener in enumerate(layers):
        if walk.settled() or (enough is not None and enough(walk.found)):
            break
        with opener() as stream:
            walk.layer(stream, f"layer {len(layers) - number} of {len(layers)}")
    return walk.found


def registry_layers(repository: Repository, digest: str) -> list[Layer]:
    """The layers of REPO@DIGEST in the registry, top first, each opened when read.

    For an image index, the image of this machine's architecture (else the first).
    """
    body, media_type = repository.manifest(digest)
    try:
        manifest = json.loads(body)
        if media_type in _INDEX_TYPES or "manifests" in manifest:
            entries = manifest["manifests"]
            arch = _ARCH.get(platform.machine(), platform.machine())
            chosen = next(
                (m for m in entries if (m.get("platform") or {}).get("architecture") == arch),
                entries[0],
            )
            body, media_type = repository.manifest(str(chosen["digest"]))
            manifest = json.loads(body)
        blobs = [str(layer["digest"]) for layer in manifest["layers"]]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BadInputError(
            f"{repository.name}@{digest}: not an image manifest with layers ({exc})"
        ) from exc

    def opener(blob: str) -> Layer:
        return lambda: repository.open_blob(blob)

    return [opener(blob) for blob in reversed(blobs)]
