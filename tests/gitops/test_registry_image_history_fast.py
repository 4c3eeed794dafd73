"""The facts `plan` compares of an image only in a registry: its ID, labels, layer diff IDs and
the history its base must begin (a LABEL adds an entry, not a layer), read with skopeo from
Debian's docker-registry, fast: an image pushed by HTTP, no podman."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator

import pytest

from nestcustom.gitops.imagefacts import registry_facts
from nestcustom.image.distribution import Repository
from tests.image.pushing import OCI, layer
from tests.universe.registry import Registry, run_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def test_a_registry_images_facts_with_its_history(registry: Registry) -> None:
    repo = Repository(f"{registry.host}/gitops/history", tls_verify=False)
    blob = layer({"etc/motd": b"hello\n"})
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Labels": {"version": "1"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "ADD rootfs /"},
                    {"created_by": "LABEL version=1", "empty_layer": True}],
    }).encode()  # fmt: skip
    manifest = {"schemaVersion": 2, "mediaType": OCI,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": repo.put_blob(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": repo.put_blob(blob), "size": len(blob)}]}  # fmt: skip
    repo.put_manifest("1", json.dumps(manifest).encode(), OCI)
    facts = registry_facts(f"{registry.host}/gitops/history:1", tls_verify=False)
    assert facts is not None
    assert (facts.image_id, facts.labels, facts.diff_ids, facts.where, facts.history) == (
        hashlib.sha256(config).hexdigest(),
        {"version": "1"},
        (diff_id,),
        "registry",
        ("ADD rootfs /", "LABEL version=1"),
    )
