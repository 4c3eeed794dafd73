"""The rechunked image's config, manifest and OCI archive."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from nestcustom.image.rechunk.assemble import LABEL, LAYER_TYPE, ChunkFile, assemble, write_archive

BASE = [("sha256:" + "a" * 64, 1000), ("sha256:" + "b" * 64, 2000)]
BUILT = {
    "created": "1970-01-01T00:00:00Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {"Labels": {"io.nestcustom.inputs": "sha256:x"}, "Env": ["PATH=/usr/bin"]},
    "rootfs": {"type": "layers", "diff_ids": [BASE[0][0], BASE[1][0], "sha256:" + "c" * 64]},
    "history": [
        {"created_by": "ostree chunk 1"},
        {"created_by": "ostree chunk 2"},
        {"created_by": "LABEL x=y", "empty_layer": True},
        {"created_by": "RUN rpm-ostree install nc-hello && ostree container commit"},
    ],
}


def chunk(tmp_path: Path, name: str, data: bytes) -> ChunkFile:
    path = tmp_path / f"{name}.tar"
    path.write_bytes(data)
    return ChunkFile(name, "sha256:" + hashlib.sha256(data).hexdigest(), len(data), path)


def test_the_config_keeps_the_built_one_with_the_chunks_as_its_custom_layers(
    tmp_path: Path,
) -> None:
    chunks = [chunk(tmp_path, "nc-hello.x86_64", b"one"), chunk(tmp_path, "state", b"two")]
    image = assemble(json.dumps(BUILT).encode(), BASE, chunks)
    config = json.loads(image.config)
    assert config["rootfs"]["diff_ids"] == [
        BASE[0][0],
        BASE[1][0],
        chunks[0].diff_id,
        chunks[1].diff_id,
    ]
    assert [h.get("empty_layer", False) for h in config["history"]] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert [h["created_by"] for h in config["history"][-2:]] == [
        "nestcustom rechunk: nc-hello.x86_64",
        "nestcustom rechunk: state",
    ]
    assert config["config"]["Env"] == ["PATH=/usr/bin"]
    assert config["config"]["Labels"]["io.nestcustom.inputs"] == "sha256:x"
    assert json.loads(config["config"]["Labels"][LABEL])["chunks"] == ["nc-hello.x86_64", "state"]
    assert image.image_id == hashlib.sha256(image.config).hexdigest()
    manifest = json.loads(image.manifest)
    assert [(x["digest"], x["size"], x["mediaType"]) for x in manifest["layers"]] == [
        (BASE[0][0], 1000, LAYER_TYPE),
        (BASE[1][0], 2000, LAYER_TYPE),
        (chunks[0].diff_id, 3, LAYER_TYPE),
        (chunks[1].diff_id, 3, LAYER_TYPE),
    ]
    assert manifest["config"]["digest"] == f"sha256:{image.image_id}"
    again = assemble(json.dumps(BUILT, indent=2, sort_keys=False).encode(), BASE, chunks)
    assert again == image


def test_a_built_image_not_on_its_base_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not start with its base's layers"):
        assemble(json.dumps(BUILT).encode(), [("sha256:" + "f" * 64, 1)], [])


def test_the_archive_is_an_oci_layout_without_the_bases_blobs(tmp_path: Path) -> None:
    chunks = [chunk(tmp_path, "state", b"two")]
    image = assemble(json.dumps(BUILT).encode(), BASE, chunks)
    out = io.BytesIO()
    write_archive(out, image, chunks)
    out.seek(0)
    with tarfile.open(fileobj=out) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]
    index = json.loads(files.pop("index.json"))
    assert json.loads(files.pop("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    assert index["manifests"][0]["digest"] == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    assert files == {
        "blobs/sha256/" + hashlib.sha256(image.manifest).hexdigest(): image.manifest,
        f"blobs/sha256/{image.image_id}": image.config,
        f"blobs/{chunks[0].diff_id.replace(':', '/')}": b"two",
    }
