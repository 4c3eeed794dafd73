"""The layer -> a single-layer image FROM scratch, written byte for byte here, then loaded.

Neither `podman import` (refuses HEALTHCHECK) nor `podman build` (the Docker
format adds a random container id and hostname to the config; the OCI format
drops HEALTHCHECK) can give a reproducible image with a health check, so the
image is written as a docker-archive: a Docker image config (which has a
Healthcheck field) whose every value comes from the inputs, the layer, and a
manifest. Loaded into podman's storage, its ID is the config's digest: the same
ISO, variant and package set give the same ID, and the same pushed digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nestcustom.base.tarball import Layer

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64", "loongarch64": "loong64"}
_SECOND = 1_000_000_000  # Docker's config counts durations in nanoseconds


@dataclass(frozen=True)
class ImageSpec:
    """Everything the image config says, from the inputs only."""

    arch: str
    created: int  # SOURCE_DATE_EPOCH
    labels: tuple[tuple[str, str], ...]
    cmd: tuple[str, ...]
    healthcheck: tuple[str, ...] | None  # the test, e.g. ("CMD", "systemctl", "is-system-running")
    stop_signal: str | None
    history: str


def _created(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def config_json(spec: ImageSpec, layer: Layer) -> bytes:
    config: dict[str, object] = {
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "container=oci",
        ],
        "Cmd": list(spec.cmd),
        "Labels": dict(sorted(spec.labels)),
    }
    if spec.stop_signal:
        config["StopSignal"] = spec.stop_signal
    if spec.healthcheck:
        config["Healthcheck"] = {
            "Test": list(spec.healthcheck),
            "Interval": 30 * _SECOND,
            "Timeout": 10 * _SECOND,
            "StartPeriod": 60 * _SECOND,
            "Retries": 3,
        }
    document = {
        "architecture": _GOARCH.get(spec.arch, spec.arch),
        "os": "linux",
        "created": _created(spec.created),
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "history": [{"created": _created(spec.created), "created_by": spec.history}],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def write_archive(spec: ImageSpec, layer: Layer, out: Path) -> str:
    """A docker-archive with the layer and its config; returns the image ID (config digest)."""
    config = config_json(spec, layer)
    image_id = hashlib.sha256(config).hexdigest()
    layer_name = f"{layer.digest.removeprefix('sha256:')}/layer.tar"
    manifest = json.dumps(
        [{"Config": f"{image_id}.json", "RepoTags": None, "Layers": [layer_name]}]
    ).encode()

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), spec.created, 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "manifest.json", manifest)
        add(tar, f"{image_id}.json", config)
        info = tarfile.TarInfo(layer_name)
        info.size, info.mtime, info.mode = layer.size, spec.created, 0o644
        with layer.path.open("rb") as handle:
            tar.addfile(info, handle)
    return image_id
