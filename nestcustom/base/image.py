"""The layer -> a single-layer image FROM scratch, written byte for byte here, then loaded.

Neither `podman import` (refuses HEALTHCHECK) nor `podman build` (the Docker
format adds a random container id and hostname to the config; the OCI format
drops HEALTHCHECK) can give a reproducible image with a health check, so the
image is made as a docker-archive: the layer, a Docker image config (which
has a Healthcheck field) whose every value comes from the inputs and the
layer's digest, and a manifest, streamed straight into podman's storage in
one pass (no copy of the root is written first). Its ID is the config's
digest: the same ISO, variant and package set give the same ID, and the same
pushed digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nestcustom.base.repos import Media
from nestcustom.base.tarball import Layer
from nestcustom.base.variants import Variant

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


def config_json(spec: ImageSpec, diff_id: str) -> bytes:
    """The Docker image config; `diff_id` is the layer's sha256:... ."""
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
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _created(spec.created), "created_by": spec.history}],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _member(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _file(name: str, data: bytes, mtime: int) -> bytes:
    return _member(name, len(data), mtime) + data + _padding(len(data))


LAYER_NAME = "layer.tar"


class DockerArchive:
    """A docker-archive, produced in one pass: the layer, then the config and the manifest.

    The config names the layer's digest, known only once the layer has gone by, so
    it comes after the layer; podman reads the whole archive before it looks for
    manifest.json, so the order does not matter to it. Iterate once; `image_id`
    (the config's digest) is known once the layer has gone by, and is handed then to
    `on_image_id`, while podman has not yet stored anything.
    """

    def __init__(
        self,
        spec: ImageSpec,
        layer: Layer,
        layer_bytes: Iterable[bytes],
        on_image_id: Callable[[str], None] = lambda image_id: None,
    ) -> None:
        self._spec, self._layer, self._layer_bytes = spec, layer, layer_bytes
        self._on_image_id = on_image_id
        self._image_id: str | None = None

    @property
    def image_id(self) -> str:
        if self._image_id is None:
            raise RuntimeError("the archive's layer has not been streamed yet")
        return self._image_id

    @property
    def image_id_known(self) -> bool:
        return self._image_id is not None

    def __iter__(self) -> Iterator[bytes]:
        created, size = self._spec.created, self._layer.size
        digest = hashlib.sha256()
        yield _member(LAYER_NAME, size, created)
        for chunk in self._layer_bytes:
            digest.update(chunk)
            yield chunk
        yield _padding(size)
        config = config_json(self._spec, "sha256:" + digest.hexdigest())
        image_id = hashlib.sha256(config).hexdigest()
        manifest = json.dumps(
            [{"Config": f"{image_id}.json", "RepoTags": None, "Layers": [LAYER_NAME]}]
        ).encode()
        self._image_id = image_id
        self._on_image_id(image_id)
        yield _file(f"{image_id}.json", config, created)
        yield _file("manifest.json", manifest, created)
        yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _os_release(root: Path) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = root / candidate
        with contextlib.suppress(OSError):
            values = {}
            for line in path.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    values[key.strip()] = value.strip().strip('"')
            return values
    return {}


def spec_for(
    iso: Path,
    specs: tuple[str, ...],
    variant: Variant,
    media: Media,
    root: Path,
    iso_sha: str,
) -> ImageSpec:
    """The image config's values, from the ISO and the root (call while the root exists)."""
    release = _os_release(root)
    name = release.get("NAME") or media.release.name
    version = release.get("VERSION_ID") or media.release.version
    vendor = release.get("VENDOR_NAME") or media.release.name
    inits = [
        p
        for p in ("sbin/init", "usr/lib/systemd/systemd", "lib/systemd/systemd")
        if (root / p).exists()
    ]
    systemd = bool(inits)
    standard = variant.name == "standard"
    labels = {
        "org.opencontainers.image.title": f"{name} {variant.name}",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.vendor": vendor,
        "org.opencontainers.image.created": _created(media.release.source_date_epoch),
        "org.opencontainers.image.description": f"{name} {version} base image ({variant.name}) "
        f"built from {iso.name}",
        "io.nestcustom.base.iso": iso.name,
        "io.nestcustom.base.iso.sha256": iso_sha,
        "io.nestcustom.base.variant": variant.name,
        "io.nestcustom.base.packages": ",".join(specs),
    }
    return ImageSpec(
        arch=media.release.arch or "x86_64",
        created=media.release.source_date_epoch,
        labels=tuple(labels.items()),
        cmd=(f"/{inits[0]}",) if standard and systemd else ("/bin/bash",),
        healthcheck=("CMD", "systemctl", "is-system-running") if standard and systemd else None,
        stop_signal="SIGRTMIN+3" if standard and systemd else None,
        history=f"nestcustom base from-iso {iso.name} --variant {variant.name} "
        f"--packages {','.join(specs)}",
    )
