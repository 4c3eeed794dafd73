"""An image's packages, read from its layers in local storage or its registry; no container runs.

`containers-storage:REF` reads podman's local storage, `docker://REF` the
registry; a bare REF is local storage when podman has it, else the registry.
Local storage (overlay) is read in place, layer directory by layer
directory; from a registry only the layers down to the one holding the RPM
database are downloaded, streamed, and nothing of them is kept.
"""

from __future__ import annotations

import json
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.gitops.blobs import BlobReader, manifest_layers
from nestcustom.image.dblayers import DbSearch, FoundDb, search_overlay, tar_entries

LOCAL, REGISTRY = "containers-storage:", "docker://"


@dataclass(frozen=True)
class LayerInfo:
    digest: str
    size: int  # bytes: compressed in a registry, unpacked in local storage


@dataclass(frozen=True)
class ImageDb:
    reference: str
    where: str  # "local" or "registry"
    db: FoundDb | None  # None: the image has no RPM database
    layers: tuple[LayerInfo, ...]  # bottom first
    layers_read: int  # how many layers were opened to find the database
    downloaded: int  # bytes fetched from the registry


# registry[:port]/path[:tag][@sha256:hex], or an image ID: what podman and skopeo take
_REFERENCE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


def check_reference(spec: str) -> None:
    """Refuse what is no image reference before any tool is asked about it."""
    bare = spec.removeprefix(LOCAL).removeprefix(REGISTRY)
    if not _REFERENCE.match(bare):
        raise BadInputError(
            f"{spec!r} is not an image reference",
            "e.g. docker://registry.example.com/nestos/web:latest, "
            "containers-storage:localhost/nestcustom/web:latest, or two recipe .yaml files",
        )


def open_image(spec: str, *, tls_verify: bool = True, arch: str | None = None) -> ImageDb:
    """Find the RPM database of the image `spec` names (see the module's doc)."""
    check_reference(spec)
    if spec.startswith(LOCAL):
        found = _local(spec.removeprefix(LOCAL))
        if found is None:
            raise BadInputError(
                f"{spec}: no such image in local storage", "podman images lists them"
            )
        return found
    if spec.startswith(REGISTRY):
        return _registry(spec.removeprefix(REGISTRY), tls_verify, arch)
    return _local(spec) or _registry(spec, tls_verify, arch)


def _inspect(reference: str) -> dict[str, object] | None:
    podman = proc.require("podman", "podman")
    done = proc.run([podman, "image", "inspect", "--format", "json", reference], check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    item: dict[str, object] = json.loads(done.stdout)[0]
    return item


def _local(reference: str) -> ImageDb | None:
    item = _inspect(reference)
    if item is None:
        return None
    driver = item.get("GraphDriver") or {}
    assert isinstance(driver, dict)
    data = driver.get("Data") or {}
    if driver.get("Name") != "overlay" or not data.get("UpperDir"):
        raise NestcustomError(
            f"{reference}: local storage uses the {driver.get('Name')!r} driver; "
            "only overlay layers are read in place",
            f"push it and diff docker://{reference}, or use the overlay driver",
        )
    top_down = [Path(data["UpperDir"])] + [
        Path(p) for p in str(data.get("LowerDir") or "").split(":") if p
    ]
    db, read = search_overlay(top_down)
    return ImageDb(reference, "local", db, _local_layers(reference, item), read, 0)


def _local_layers(reference: str, item: dict[str, object]) -> tuple[LayerInfo, ...]:
    """Each layer's unpacked size, from the image's history (empty layers left out)."""
    rootfs = item.get("RootFS") or {}
    assert isinstance(rootfs, dict)
    diff_ids = list(rootfs.get("Layers") or [])
    podman = proc.require("podman", "podman")
    done = proc.run([podman, "history", "--no-trunc", "--format", "json", reference], check=False)
    sizes: list[int] = []
    if done.returncode == 0 and done.stdout.strip():
        history = json.loads(done.stdout)
        sizes = [int(h.get("size") or 0) for h in reversed(history) if int(h.get("size") or 0) > 0]
    if len(sizes) != len(diff_ids):
        sizes = [0] * len(diff_ids)  # history does not line up (squashed images): sizes unknown
    return tuple(LayerInfo(d, s) for d, s in zip(diff_ids, sizes, strict=True))


def _registry(reference: str, tls_verify: bool, arch: str | None) -> ImageDb:
    layers = manifest_layers(reference, tls_verify, arch)
    reader = BlobReader(reference, tls_verify)
    search = DbSearch()
    db = None
    for layer in reversed(layers):
        if "zstd" in layer.media_type:
            raise NestcustomError(
                f"{reference}: layer {layer.digest[:19]} is zstd-compressed, which this diff cannot read",
                "push the image with gzip layers (podman push --compression-format gzip)",
            )
        try:
            with reader.open(layer.digest) as stream:
                db = search.add_layer(*tar_entries(stream))
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            # An artifact (an SBOM, a signature) or a broken layer: say which, not "internal".
            raise NestcustomError(
                f"{reference}: layer {layer.digest[:19]} ({layer.media_type or 'no media type'}) "
                f"is not a layer tar: {exc}",
                "diff, sbom and advisories read container images, not artifacts such as SBOMs "
                "or signatures",
            ) from exc
        if db is not None:
            break
    infos = tuple(LayerInfo(layer.digest, layer.size) for layer in layers)
    return ImageDb(reference, "registry", db, infos, search.layers_read, reader.downloaded)
