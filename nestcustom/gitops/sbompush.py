"""An SBOM pushed next to its image, and signed like it, before the image's tag is set.

docker-registry 2.8 (Debian 12's, the universe's) stores OCI artifact
manifests (any config and layer media type whose blobs it has, and the OCI
1.1 `subject` field kept verbatim) but has no referrers API (OCI 1.1, from
distribution 3.0). So the SBOM is an OCI manifest whose `subject` names the
image (registries with the referrers API list it there) and it is tagged the
way cosign names attachments, `sha256-HEX.sbom` next to `sha256-HEX.sig`,
which any registry and tool can find. Like the image it is pushed by digest,
signed for REPO:sha256-HEX.sbom, and only then tagged.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor

from nestcustom.gitops.imagefacts import local_facts
from nestcustom.gitops.sbom import (
    MEDIA_TYPES,
    RpmPackage,
    Subject,
    load_validator,
    read_image,
    sbom_of,
)
from nestcustom.image.distribution import Repository
from nestcustom.image.events import split_reference
from nestcustom.image.signedpush import Pushed
from nestcustom.image.signing import Signer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
Read = tuple[Subject, tuple[RpmPackage, ...]]  # what read_image read of an image
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def sbom_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sbom"


def push_sbom(
    pushed: Pushed,
    signer: Signer | None,
    tls_verify: bool,
    fmt: str = "spdx",
    read: Read | None = None,
) -> tuple[str, str]:
    """Push (and sign) the SBOM of `pushed`; (REPO:TAG, digest) it is under. `read`: what
    read_image already read of the local image (SbomAttacher.prepare)."""
    repository_name, _ = split_reference(pushed.reference)
    if read is None:
        here = local_facts(pushed.image_id) is not None
        spec = (
            f"containers-storage:{pushed.image_id}"
            if here
            else f"docker://{repository_name}@{pushed.digest}"
        )
        read = read_image(spec, tls_verify)
    sbom = sbom_of(read, fmt, name=f"{repository_name}@{pushed.digest}", digest=pushed.digest)
    body = (json.dumps(sbom.document, indent=2, sort_keys=True) + "\n").encode()
    repository = Repository(repository_name, tls_verify=tls_verify)
    image_manifest, image_type = repository.manifest(pushed.digest)
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MEDIA_TYPES[fmt],
        "config": {
            "mediaType": EMPTY_CONFIG,
            "digest": repository.put_blob(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": MEDIA_TYPES[fmt],
                "digest": repository.put_blob(body),
                "size": len(body),
                "annotations": {"org.opencontainers.image.title": f"sbom.{fmt}.json"},
            }
        ],
        "subject": {"mediaType": image_type, "digest": pushed.digest, "size": len(image_manifest)},
    }
    raw = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    tag = sbom_tag(pushed.digest)
    digest = repository.put_manifest("sha256:" + hashlib.sha256(raw).hexdigest(), raw, OCI_MANIFEST)
    if signer is not None:  # a rebuild gives the same SBOM: one signature is enough
        signer.ensure(f"{repository_name}:{tag}", digest, tls_verify, raw)
    repository.put_manifest(tag, raw, OCI_MANIFEST)
    return f"{repository_name}:{tag}", digest


class SbomAttacher:
    """build's `attach`: the local image's rpmdb is read while the image is pushed (a
    thread of its own), the SBOM made, pushed and signed once the image's digest is known."""

    def __init__(self, signer: Signer | None, tls_verify: bool) -> None:
        self.signer = signer
        self.tls_verify = tls_verify
        self._reading: tuple[str, Future[Read]] | None = None

    def prepare(self, image_id: str) -> None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sbom-read")
        spec = f"containers-storage:{image_id}"
        self._reading = (image_id, pool.submit(_read_ahead, spec, self.tls_verify))
        pool.shutdown(wait=False)  # the thread ends with its one read

    def __call__(self, pushed: Pushed) -> None:
        read = None
        if self._reading is not None and self._reading[0] == pushed.image_id:
            read = self._reading[1].result()  # its error, if any, is raised here
        self._reading = None
        push_sbom(pushed, self.signer, self.tls_verify, read=read)


def _read_ahead(spec: str, tls_verify: bool) -> Read:
    read = read_image(spec, tls_verify)
    load_validator("spdx")
    return read


def sbom_attacher(signer: Signer | None, tls_verify: bool) -> SbomAttacher:
    return SbomAttacher(signer, tls_verify)
