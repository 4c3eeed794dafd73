"""The rechunk step of a build: the built image in, the same filesystem in chunks out.

the layers, read in place (overlayread) or else from podman's export (readlayers) ->
squash -> owners -> plan -> one tar per chunk (writetar) -> OCI archive (assemble) ->
podman load -> check that podman holds exactly the layers planned. A built image
rechunked before (a warm build) is looked up first and costs nothing more.
Everything it writes goes to one spool directory (in $TMPDIR), removed whatever happens;
the only thing it leaves is the loaded image, untagged (the build tags it, as it would
have tagged the image podman built). A stop between phases ends it with nothing loaded.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from nestcustom.errors import NestcustomError
from nestcustom.image import rpmdb
from nestcustom.image.events import BuildEvent
from nestcustom.image.inputs import INPUTS_LABEL
from nestcustom.image.podman import Podman
from nestcustom.image.rechunk import owners as owning
from nestcustom.image.rechunk.assemble import FORMAT, LABEL, ChunkFile, assemble, write_archive
from nestcustom.image.rechunk.overlayread import read_stored
from nestcustom.image.rechunk.plan import Limits, Plan, PlanError, plan
from nestcustom.image.rechunk.readlayers import LayerReadError, read_export
from nestcustom.image.rechunk.squash import SquashError, squash
from nestcustom.image.rechunk.writetar import write_chunk
from nestcustom.recipe.model import Recipe
from nestcustom.recipe.schema import cache_dir


@dataclass(frozen=True)
class Rechunked:
    image_id: str
    chunks: tuple[str, ...]  # each chunk's name, lowest first
    custom_bytes: int  # the chunks' tar bytes
    seconds: float


# c/storage v1.43 drivers/overlay/overlay.go: maxDepth = 128 ("max depth exceeded"), and a
# container needs one more layer of its own on top.
MAX_STACK = 127


class RechunkError(NestcustomError):
    pass


def rechunked(
    podman: Podman,
    recipe: Recipe,
    image_id: str,
    listen: Callable[[BuildEvent], None],
    stopped: Callable[[], bool],
) -> str:
    """The build's image rechunked as `recipe` asks; a failure is the recipe's."""
    assert recipe.rechunk is not None
    limits = Limits(max_layers=recipe.rechunk.max_layers)
    try:
        done = rechunk(
            podman,
            image_id,
            recipe.base.reference,
            limits,
            lambda line: listen(BuildEvent(0, 0, line)),
            stopped,
        )
    except NestcustomError as exc:
        raise NestcustomError(f"{recipe.name}: {exc.message}", exc.hint) from exc
    return done.image_id


def rechunk(
    podman: Podman,
    image_id: str,
    base_reference: str,
    limits: Limits,
    on_line: Callable[[str], None],
    stopped: Callable[[], bool] = lambda: False,
) -> Rechunked:
    started = time.monotonic()
    built = podman.inspect(image_id)
    image_id = str(built.get("Id") or image_id)  # the full ID: the export names the config by it
    diff_ids = list(built.get("RootFS", {}).get("Layers") or [])
    base_ids = list(podman.inspect(base_reference).get("RootFS", {}).get("Layers") or [])
    if diff_ids[: len(base_ids)] != base_ids:
        raise RechunkError(
            f"rechunk: {image_id[:12]} does not start with the layers of {base_reference}"
        )
    if len(base_ids) + limits.max_layers > MAX_STACK:
        raise RechunkError(
            f"rechunk: {base_reference} has {len(base_ids)} layers; with max-layers "
            f"{limits.max_layers} the image would have more than podman's overlay stacks "
            f"({MAX_STACK})",
            f"set rechunk: {{max-layers: {MAX_STACK - len(base_ids)}}} or less",
        )
    memo = _memo(image_id, limits)
    known = _remembered(podman, memo, built, base_ids, started)
    if known is not None:
        on_line(f"rechunk: as before, image {known.image_id[:12]}")
        return known
    spool_dir = Path(tempfile.mkdtemp(prefix="nestcustom-rechunk-"))
    try:
        on_line(
            f"rechunk: reading the {len(diff_ids) - len(base_ids)} custom layer(s) of {image_id[:12]}"
        )
        with (spool_dir / "files").open("w+b") as spool:
            try:
                layers = read_stored(
                    built, len(base_ids), podman.layer_sizes(base_reference), spool, _cache()
                ) or read_export(
                    cast(IO[bytes], _Reader(podman.save_stream(image_id))),
                    image_id,
                    diff_ids,
                    len(base_ids),
                    spool,
                )
                diff = squash(layers.custom, layers.base)
                found = owning.find_db(diff, spool)
                owned = (
                    owning.assign(diff, rpmdb.read_files(found), spool, layers.base)
                    if found
                    else {}
                )
                chunks = plan(diff, owned, limits)
            except (LayerReadError, SquashError, PlanError) as exc:
                raise RechunkError(f"rechunk: {exc}") from exc
            _check(stopped)
            written = _write(chunks, spool, spool_dir, stopped)
        image = assemble(
            layers.config, list(zip(base_ids, layers.base_sizes, strict=True)), written
        )
        _check(stopped)
        if not podman.exists(image.image_id):
            with (spool_dir / "image.tar").open("w+b") as archive:
                write_archive(archive, image, written)
                archive.seek(0)
                loaded = podman.load_stream(
                    iter(lambda: archive.read(1 << 20), b""), "the rechunked image"
                )
            if loaded != image.image_id:
                raise RechunkError(
                    f"rechunk: podman loaded {loaded[:12]}, not {image.image_id[:12]}"
                )
        held = podman.inspect(image.image_id).get("RootFS", {}).get("Layers") or []
        if held != [*base_ids, *(c.diff_id for c in written)]:
            raise RechunkError(
                f"rechunk: podman holds other layers for {image.image_id[:12]} than planned"
            )
        size = sum(c.size for c in written)
        if memo is not None:
            _remember(memo, image.image_id)
        seconds = time.monotonic() - started
        on_line(
            f"rechunk: {len(written)} chunk(s), {size} bytes, image {image.image_id[:12]} "
            f"({seconds:.1f} s)"
        )
        return Rechunked(image.image_id, tuple(c.name for c in written), size, seconds)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise RechunkError(
            f"rechunk: {exc.strerror} in {spool_dir.parent}",
            "rechunk copies the image's custom files there before it writes the chunks: "
            "free space there, or set TMPDIR to a larger file system",
        ) from exc
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


def _write(
    result: Plan, spool: BinaryIO, into: Path, stopped: Callable[[], bool]
) -> list[ChunkFile]:
    written = []
    for number, chunk in enumerate(result.chunks):
        _check(stopped)
        path = into / f"chunk-{number}.tar"
        with path.open("wb") as out:
            tar = write_chunk(chunk.members, spool, out)
        written.append(ChunkFile(chunk.name, tar.diff_id, tar.size, path))
    return written


def _memo(image_id: str, limits: Limits) -> Path | None:
    """Where the rechunked ID of a built image is remembered: a warm build (every step from
    podman's cache) gives the same built image, and then costs no rechunk at all."""
    cache = _cache()
    if cache is None:
        return None
    return (
        cache
        / f"built-{image_id}-{FORMAT}-{limits.max_layers}-{limits.small_buckets}-{limits.file_groups}"
    )


def _remembered(
    podman: Podman, memo: Path | None, built: dict[str, Any], base_ids: list[str], started: float
) -> Rechunked | None:
    """The image rechunked from `built` before, if podman still holds it as it was made."""
    try:
        image_id = memo.read_text().strip() if memo else ""
    except OSError:
        return None
    if not image_id or not podman.exists(image_id):
        return None
    attrs = podman.inspect(image_id)
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    built_labels = (built.get("Config") or {}).get("Labels") or {}
    layers = (attrs.get("RootFS") or {}).get("Layers") or []
    if (
        labels.get(INPUTS_LABEL) != built_labels.get(INPUTS_LABEL)
        or layers[: len(base_ids)] != base_ids
    ):
        return None
    try:
        chunks = tuple(json.loads(labels[LABEL])["chunks"])
    except (KeyError, ValueError, TypeError):
        return None
    return Rechunked(str(attrs.get("Id") or image_id), chunks, 0, time.monotonic() - started)


def _remember(memo: Path, image_id: str) -> None:
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        part = memo.with_name(f"{memo.name}.{os.getpid()}.part")
        part.write_text(image_id)
        part.replace(memo)
    except OSError:
        pass  # no cache: the next warm build rechunks again, nothing worse


def _cache() -> Path | None:
    found = cache_dir()
    return found / "rechunk" if found else None


def _check(stopped: Callable[[], bool]) -> None:
    if stopped():
        raise RechunkError("rechunk: interrupted; nothing was loaded")


class _Reader:
    """A file-like view of an iterator of byte blocks (tarfile's stream mode reads it)."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks: Iterator[bytes] = iter(blocks)
        self._block = b""
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        parts = []
        want = size if size >= 0 else float("inf")
        while want > 0:
            if self._at >= len(self._block):
                block = next(self._blocks, None)
                if block is None:
                    break
                self._block, self._at = block, 0
                continue
            end = len(self._block) if want == float("inf") else self._at + int(want)
            part = self._block[self._at : end]
            self._at += len(part)
            want -= len(part)
            parts.append(part)
        return b"".join(parts)
