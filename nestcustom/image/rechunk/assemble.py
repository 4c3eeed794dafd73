"""The rechunked image as an OCI archive podman loads: the built config with the chunks as
its custom layers, and a manifest that names the base's layers without carrying them.

Podman's storage reuses a layer it holds when a manifest names it by its uncompressed
digest (c/image `storage/storage_dest.go` `tryReusingBlobAsPending`), so the archive holds
only the config, the manifest and the chunks: loading costs the custom part, not the base
(tried on podman 4.3.1: docs/contracts/nestos-rpm-ostree.md, section 7).

The config is the built one, byte for byte but for three things: `rootfs.diff_ids` (the
base's, then the chunks'), `history` (the recipe's steps stay, marked as empty layers, so
`podman history` still tells what the recipe did; one entry per chunk follows), and the
label `io.nestcustom.rechunk` naming the chunks. It is written with sorted keys and no
spaces, so the same chunks give the same image ID.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

LABEL = "io.nestcustom.rechunk"
FORMAT = 1  # raised whenever the plan or the chunks' bytes would change for the same image
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class ChunkFile:
    name: str  # what the chunk holds (the history entry)
    diff_id: str
    size: int
    path: Path  # the chunk's tar


@dataclass(frozen=True)
class Assembled:
    image_id: str  # the config's sha256: podman's image ID for it
    config: bytes
    manifest: bytes


def assemble(
    original: bytes, base_layers: Sequence[tuple[str, int]], chunks: Sequence[ChunkFile]
) -> Assembled:
    """`original`: the built image's config; `base_layers`: (diff id, size) of the base's."""
    config: dict[str, Any] = json.loads(original)
    diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
    if diff_ids[: len(base_layers)] != [d for d, _ in base_layers]:
        raise ValueError("the built image does not start with its base's layers")
    created = config.get("created", "1970-01-01T00:00:00Z")
    history = []
    layer = 0
    for entry in config.get("history", []):
        if not entry.get("empty_layer"):
            if layer >= len(base_layers):
                entry = {**entry, "empty_layer": True}
            layer += 1
        history.append(entry)
    history += [
        {"created": created, "created_by": f"nestcustom rechunk: {c.name}", "comment": c.diff_id}
        for c in chunks
    ]
    config["history"] = history
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": [*(d for d, _ in base_layers), *(c.diff_id for c in chunks)],
    }
    inner = config.setdefault("config", {})
    labels = dict(inner.get("Labels") or {})
    labels[LABEL] = json.dumps(
        {"format": FORMAT, "chunks": [c.name for c in chunks]}, separators=(",", ":")
    )
    inner["Labels"] = labels
    config_bytes = _canonical(config)
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": _descriptor(CONFIG_TYPE, config_bytes),
            "layers": [
                *({"mediaType": LAYER_TYPE, "digest": d, "size": s} for d, s in base_layers),
                *({"mediaType": LAYER_TYPE, "digest": c.diff_id, "size": c.size} for c in chunks),
            ],
        }
    )
    return Assembled(_sha256(config_bytes).removeprefix("sha256:"), config_bytes, manifest)


def write_archive(out: IO[bytes], image: Assembled, chunks: Sequence[ChunkFile]) -> None:
    """The OCI layout (image-spec `image-layout.md`) as a tar, the base's blobs left out."""
    index = _canonical(
        {"schemaVersion": 2, "manifests": [_descriptor(MANIFEST_TYPE, image.manifest)]}
    )
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        _add(archive, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(archive, "index.json", index)
        _add(archive, _blob(_sha256(image.manifest)), image.manifest)
        _add(archive, _blob(_sha256(image.config)), image.config)
        for chunk in chunks:
            info = tarfile.TarInfo(_blob(chunk.diff_id))
            info.size = chunk.size
            with chunk.path.open("rb") as data:
                archive.addfile(info, data)


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _blob(digest: str) -> str:
    algorithm, _, hexa = digest.partition(":")
    return f"blobs/{algorithm}/{hexa}"


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _sha256(data), "size": len(data)}


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
