"""What `diff`, `sbom` and `advisories` read of a multi-architecture image and of a
zstd-compressed one in a registry, fast: images pushed by HTTP to Debian's docker-registry
(tests/image/pushing.py's push_layers), an OCI index over two of them, no podman."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.gitops.blobs import manifest_layers
from nestcustom.image.distribution import Repository
from tests.gitops.helpers import nestcustom
from tests.image.pushing import OCI, Pushed, layer, push_layers
from tests.universe.registry import Registry, run_registry

INDEX = "application/vnd.oci.image.index.v1+json"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def _descriptor(repo: Repository, tag: str, architecture: str) -> dict[str, object]:
    body, media_type = repo.manifest(tag)
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body), "platform": {"architecture": architecture, "os": "linux"}}  # fmt: skip


@pytest.fixture(scope="module")
def multi(registry: Registry) -> tuple[str, Pushed, Pushed]:
    """REGISTRY/gitops/multi:1, an index of an arm64 image (listed first) and an amd64 one."""
    arm = push_layers(registry, "gitops/multi", "arm64", [layer({"etc/arch": b"arm64\n"})], {})
    amd = push_layers(registry, "gitops/multi", "amd64", [layer({"etc/arch": b"amd64\n"})], {})
    repo = Repository(f"{registry.host}/gitops/multi", tls_verify=False)
    index = {"schemaVersion": 2, "mediaType": INDEX,
             "manifests": [_descriptor(repo, "arm64", "arm64"), _descriptor(repo, "amd64", "amd64")]}  # fmt: skip
    repo.put_manifest("1", json.dumps(index).encode(), INDEX)
    return f"{registry.host}/gitops/multi:1", arm, amd


def test_an_index_is_read_for_the_architecture_asked_for(
    multi: tuple[str, Pushed, Pushed],
) -> None:
    reference, arm, amd = multi
    assert [x.digest for x in manifest_layers(reference, False, "aarch64")] == list(arm.layers)
    assert [x.digest for x in manifest_layers(reference, False, "x86_64")] == list(amd.layers)
    with pytest.raises(NestcustomError) as raised:
        manifest_layers(reference, False, "s390x")
    assert raised.value.message == f"{reference}: no image for s390x in its index"


def test_a_zstd_layer_is_refused_by_name(registry: Registry, tmp_path: Path) -> None:
    raw = tmp_path / "layer.tar"
    raw.write_bytes(b"\0" * 1024)  # an empty tar archive: its two end blocks
    compressed = subprocess.run(["zstd", "-q", "-c", str(raw)], capture_output=True, check=True)
    repo = Repository(f"{registry.host}/gitops/zstd", tls_verify=False)
    blob = compressed.stdout
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [
                             "sha256:" + hashlib.sha256(raw.read_bytes()).hexdigest()]}}).encode()  # fmt: skip
    digest = repo.put_blob(blob)
    manifest = {"schemaVersion": 2, "mediaType": OCI,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": repo.put_blob(config), "size": len(config)},
                "layers": [{"mediaType": ZSTD, "digest": digest, "size": len(blob)}]}  # fmt: skip
    repo.put_manifest("1", json.dumps(manifest).encode(), OCI)
    image = f"docker://{registry.host}/gitops/zstd:1"
    done = nestcustom("diff", image, image, "--no-tls-verify", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        1,
        f"error: {image.removeprefix('docker://')}: layer {digest[:19]} is zstd-compressed, "
        "which this diff cannot read\n"
        "  hint: push the image with gzip layers (podman push --compression-format gzip)\n",
    )
