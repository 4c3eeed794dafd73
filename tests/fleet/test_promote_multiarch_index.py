"""`nestcustom promote` of a multi-architecture image (an OCI image index) reads the trust
files of this machine's image, not of the index's first entry: images pushed by real
skopeo to a real registry, the index put by HTTP, checked as promote checks them."""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.fleet.promotetrust import Trust, check
from nestcustom.image.distribution import Repository
from nestcustom.image.trustpolicy import LABEL
from tests.fleet.trustimages import POLICY, policy, push
from tests.universe.registry import Registry, run_registry

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("skopeo", "docker-registry")),
    reason="skopeo and docker-registry (scripts/setup-host)",
)
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# this machine's architecture as image indexes name it
HERE = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
OTHER = "s390x" if HERE != "s390x" else "ppc64le"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def test_promote_reads_the_policy_of_this_machines_image_in_an_index(
    registry: Registry, tmp_path: Path
) -> None:
    image = f"{registry.host}/promote/multi"
    label = f"gpg:{image}"
    # the other architecture's image (listed first) rejects the repository; ours accepts it
    entries = []
    for arch, rule in ((OTHER, "reject"), (HERE, "insecureAcceptAnything")):
        files = {POLICY: policy({image: [{"type": rule}]})}
        digest = push(registry.host, tmp_path / arch, f"promote/multi:{arch}", [files], label)
        body, _ = Repository(image, tls_verify=False).manifest(digest)
        entries.append(
            {
                "mediaType": MANIFEST,
                "digest": digest,
                "size": len(body),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    digest = Repository(image, tls_verify=False).put_manifest("v1", index, INDEX)

    trust = check(image, digest, {LABEL: label}, unsigned=False, tls_verify=False)

    assert trust == Trust(
        False, f"unsigned: the image's policy accepts {image} without a signature (scope {image!r})"
    )
