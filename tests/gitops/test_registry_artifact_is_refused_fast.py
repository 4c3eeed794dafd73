"""`diff` of a tag that names an artifact, not an image (an SBOM pushed next to its image, as
`build --push --sbom` does), or of an image whose layer is no tar: a clear error naming the
layer, never an internal error, fast: Debian's docker-registry, manifests pushed by HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.image.distribution import Repository
from tests.gitops.helpers import nestcustom
from tests.image.pushing import OCI
from tests.universe.registry import Registry, run_registry

SPDX = "application/spdx+json"
HINT = (
    "  hint: diff, sbom and advisories read container images, not artifacts such as SBOMs "
    "or signatures\n"
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def push(registry: Registry, tag: str, blob: bytes, media_type: str) -> tuple[str, str]:
    """REGISTRY/gitops/artifact:TAG, one layer `blob` of `media_type`: (reference, digest)."""
    repo = Repository(f"{registry.host}/gitops/artifact", tls_verify=False)
    empty = b"{}"
    digest = repo.put_blob(blob)
    manifest = {"schemaVersion": 2, "mediaType": OCI,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": repo.put_blob(empty), "size": len(empty)},
                "layers": [{"mediaType": media_type, "digest": digest, "size": len(blob)}]}  # fmt: skip
    repo.put_manifest(tag, json.dumps(manifest).encode(), OCI)
    return f"{registry.host}/gitops/artifact:{tag}", digest


@pytest.mark.parametrize(
    ("media_type", "blob"),
    [
        (SPDX, json.dumps({"spdxVersion": "SPDX-2.3", "packages": []}).encode()),
        ("application/vnd.oci.image.layer.v1.tar+gzip", b"\x1f\x8b\x08\x00 not gzip at all"),
    ],
    ids=["sbom", "broken-gzip"],
)
def test_a_layer_that_is_no_tar_is_a_clear_error(
    registry: Registry, tmp_path: Path, media_type: str, blob: bytes
) -> None:
    reference, digest = push(registry, media_type.rsplit("/", 1)[1].replace("+", "-"), blob,
                             media_type)  # fmt: skip
    done = nestcustom("diff", f"docker://{reference}", f"docker://{reference}",
                      "--no-tls-verify", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    first, *rest = done.stderr.splitlines(keepends=True)
    assert first.startswith(
        f"error: {reference}: layer {digest[:19]} ({media_type}) is not a layer tar: "
    )
    assert rest == [HINT]
