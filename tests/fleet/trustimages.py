"""Images that carry signing trust files in their layers, pushed to a real registry, and
signatures made by nestcustom's signer into a lookaside directory: the world
promotetrust.py checks, built in seconds without podman (tests/fleet/test_promotetrust_fast.py).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestcustom.image.distribution import Repository
from nestcustom.image.signing import Signer
from nestcustom.image.trustpolicy import LABEL

POLICY = "etc/containers/policy.json"
REGISTRIES = "etc/containers/registries.d/nestcustom.yaml"
PKI = "etc/pki/containers"
GARBAGE = b"not a tar layer at all"  # as a layer: reading it is an error


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(files: dict[str, bytes] | bytes) -> tuple[bytes, str]:
    """A gzip layer of `files` (path -> content; b"" under `.wh.NAME` is a whiteout), or
    raw bytes as they are; with its diff_id."""
    if isinstance(files, bytes):
        return files, "sha256:" + hashlib.sha256(files).hexdigest()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0), "sha256:" + hashlib.sha256(
        raw.getvalue()
    ).hexdigest()


def push(
    host: str,
    root: Path,
    reference: str,
    layers: list[dict[str, bytes] | bytes],
    label: str,
    more_labels: dict[str, str] | None = None,
) -> str:
    """An image of `layers` (bottom first) labelled io.nestcustom.signing=`label` (and
    `more_labels`), pushed as HOST/`reference` with skopeo from an OCI layout: its manifest
    digest."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    descriptors, diff_ids = [], []
    for files in layers:
        data, diff_id = _layer(files)
        diff_ids.append(diff_id)
        descriptors.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(root, data)}
        )
    labels = {LABEL: label, **(more_labels or {})}
    config = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **_blob(root, json.dumps(config).encode())},
        "layers": descriptors,
    }  # fmt: skip
    described = _blob(root, json.dumps(manifest).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **described}]}))  # fmt: skip
    subprocess.run(["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{root}", f"docker://{host}/{reference}"],
                   check=True, capture_output=True)  # fmt: skip
    return str(described["digest"])


def policy(scopes: dict[str, list[dict[str, Any]]], default: str = "reject") -> bytes:
    """A policy.json: `scopes` of the docker transport, everything else `default`."""
    return json.dumps(
        {"default": [{"type": default}], "transports": {"docker": scopes}}, indent=2
    ).encode()


def signed_by(*key_paths: str, data: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "signedBy", "keyType": "GPGKeys"}
    if len(key_paths) == 1:
        found["keyPath"] = key_paths[0]
    elif key_paths:
        found["keyPaths"] = list(key_paths)
    if data is not None:
        found["keyData"] = data
    return found


def registries(lookasides: dict[str, str]) -> bytes:
    """A registries.d file: scope -> lookaside URL."""
    return json.dumps({"docker": {s: {"lookaside": u} for s, u in lookasides.items()}}).encode()


@dataclass(frozen=True)
class Store:
    """A lookaside directory (served over HTTP elsewhere) that signatures are written into."""

    root: Path
    host: str  # the registry, 127.0.0.1:PORT

    def sign(
        self, signer: Signer, image: str, digest: str, identity: str, *, path: str | None = None
    ) -> str:
        """Sign IMAGE@DIGEST's manifest as `identity` and store it as the next signature of
        PATH@DIGEST (the image's own path unless `path`): its signature-N name."""
        manifest, _ = Repository(image, tls_verify=False).manifest(digest)
        where = path or image.removeprefix(self.host + "/")
        directory = self.root / f"{where}@sha256={digest.split(':')[1]}"
        directory.mkdir(parents=True, exist_ok=True)
        name = f"signature-{len(list(directory.iterdir())) + 1}"
        (directory / name).write_bytes(signer.signature(manifest, identity))
        return name
