"""podman's push, as the image stage calls it, done by HTTP: an image with no layers
(a config and a manifest) uploaded to `destination` (through the push proxy, for a push
by digest) with the registry API client, so the proxy, the registry, skopeo and gpg
around it are all real."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

from nestcustom.image.distribution import Repository
from nestcustom.image.events import split_reference
from tests.universe.registry import Registry

OCI = "application/vnd.oci.image.manifest.v1+json"


def image_config(labels: dict[str, str]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()


def image_id(config: bytes) -> str:
    return hashlib.sha256(config).hexdigest()


class HttpPodman:
    """Holds images by ID (their configs) and local tags; push uploads one, tag sets one."""

    def __init__(self, *configs: bytes) -> None:
        self.images = {image_id(c): c for c in configs}
        self.tags: dict[str, str] = {}
        self.on_push: Callable[[], None] = lambda: None

    def tag(self, image_id: str, reference: str) -> None:
        self.tags[reference] = image_id

    def push(
        self,
        reference: str,
        *,
        tls_verify: bool = True,
        credentials: tuple[str, str] | None = None,
        on_line: Callable[[str], None] = lambda line: None,
        destination: str | None = None,
    ) -> None:
        # `reference` is an image ID (a push by digest) or a local tag
        config = self.images[self.tags.get(reference, reference.removeprefix("sha256:"))]
        repository, tag = split_reference(destination or reference)
        repo = Repository(repository, tls_verify=False)
        digest = repo.put_blob(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": len(config),
            },
            "layers": [],
        }
        repo.put_manifest(tag, json.dumps(manifest).encode(), OCI)
        on_line(f"Writing manifest to image destination {tag}")
        self.on_push()


def layer(files: dict[str, bytes]) -> bytes:
    """A gzip'd tar of `files`, the same bytes for the same files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass(frozen=True)
class Pushed:
    reference: str
    layers: tuple[str, ...]  # compressed digests, bottom up
    sizes: tuple[int, ...]


def push_layers(
    registry: Registry, repository: str, tag: str, blobs: list[bytes], labels: dict[str, str]
) -> Pushed:
    """An OCI image of `blobs` (gzip'd tars, bottom up) pushed by HTTP as REPOSITORY:TAG."""
    repo = Repository(f"{registry.host}/{repository}", tls_verify=False)
    digests = tuple(repo.put_blob(b) for b in blobs)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"ostree.bootable": "true", **labels}},
            "rootfs": {
                "type": "layers",
                "diff_ids": [
                    "sha256:" + hashlib.sha256(gzip.decompress(b)).hexdigest() for b in blobs
                ],
            },
        }
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": repo.put_blob(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d,
                "size": len(b),
            }
            for d, b in zip(digests, blobs, strict=True)
        ],
    }
    repo.put_manifest(tag, json.dumps(manifest).encode(), OCI)
    return Pushed(f"{registry.host}/{repository}:{tag}", digests, tuple(len(b) for b in blobs))
