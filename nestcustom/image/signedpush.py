"""Push, sign, then tag: an image is never under its tag before its signature is stored.

1. podman pushes the image through a local proxy (pushproxy.py) that stores
   the manifest by digest instead of under the tag;
2. the manifest is read back by digest and must name our image (its config);
3. it is signed for REGISTRY/PATH:TAG and the signature stored (signing.py);
4. what must go next to it (an SBOM) is pushed and signed the same way;
5. only then the tag is set, locally and in the registry (a manifest-only
   copy by digest), and what the tag serves is checked to be that digest.

A failure at 1-4 leaves no new tag anywhere (the manifest stays in the
registry by digest, unnamed, as any untagged push does), and a stop request
is honoured before each step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nestcustom.errors import NestcustomError
from nestcustom.image import registry
from nestcustom.image.auth import credentials_for
from nestcustom.image.distribution import Repository, split_name
from nestcustom.image.events import split_reference
from nestcustom.image.publish import StopFlag
from nestcustom.image.pushproxy import push_proxy
from nestcustom.image.signing import Signed, Signer


@dataclass(frozen=True)
class Pushed:
    """An image in the registry by digest, signed, not yet tagged."""

    reference: str  # REGISTRY/PATH:TAG it is to get
    digest: str
    image_id: str
    signed: Signed | None


class Attach(Protocol):
    """What goes next to the image (an SBOM): `prepare` may start reading the local image
    while it is pushed; calling it with the pushed image pushes the attachment."""

    def prepare(self, image_id: str) -> None: ...

    def __call__(self, pushed: Pushed) -> None: ...


class Publisher(Protocol):
    """What a push by digest needs of podman (`podman.Podman` has it)."""

    def tag(self, image_id: str, reference: str) -> None: ...

    def push(
        self,
        reference: str,
        *,
        tls_verify: bool = True,
        credentials: tuple[str, str] | None = None,
        on_line: Callable[[str], None] = ...,
        destination: str | None = None,
    ) -> None: ...


def push_by_digest(
    podman: Publisher,
    image_id: str,
    reference: str,
    *,
    tls_verify: bool,
    stop: StopFlag,
    on_line: Callable[[str], None],
) -> tuple[str, bytes]:
    """Push `image_id` into `reference`'s repository without a tag: (digest, manifest)."""
    with stop.unless_stopped("pushing; nothing was pushed"):
        pass
    registry_host, path = split_name(reference)
    _, tag = split_reference(reference)
    found = credentials_for(reference)
    with push_proxy(registry_host, tls_verify=tls_verify) as proxy:
        podman.push(
            image_id,
            destination=f"{proxy.address}/{path}:{tag}",
            tls_verify=False,  # the proxy, on 127.0.0.1; it verifies the registry's TLS
            credentials=(found.username, found.password) if found else None,
            on_line=on_line,
        )
        sent = proxy.pushed(path, tag)
    repository = Repository(split_reference(reference)[0], tls_verify=tls_verify)
    stored, _ = repository.manifest(sent.digest)
    config = json.loads(stored).get("config") or {}
    if stored != sent.manifest or config.get("digest") != "sha256:" + image_id.removeprefix(
        "sha256:"
    ):
        raise NestcustomError(
            f"the registry serves another manifest under {sent.digest} than the one pushed",
            "push again; if it persists, the registry rewrites manifests and cannot hold signed images",
        )
    return sent.digest, stored


def publish_signed(
    podman: Publisher,
    image_id: str,
    reference: str,
    *,
    signer: Signer | None,
    attach: Attach | None,
    tls_verify: bool,
    stop: StopFlag,
    on_line: Callable[[str], None],
) -> str:
    """Steps 1-5 of the module doc; the digest the tag serves. The caller holds the tag lock."""
    if attach is not None:
        attach.prepare(image_id)  # the SBOM's reading of the image overlaps the push
    digest, manifest = push_by_digest(
        podman, image_id, reference, tls_verify=tls_verify, stop=stop, on_line=on_line
    )
    signed = None
    if signer is not None:
        with stop.unless_stopped(f"signing; {digest} is in the registry untagged, no tag was set"):
            signed = signer.sign(reference, digest, manifest)
        on_line(f"signed {digest} for {reference} (key {signer.fingerprint[-16:]}): {signed.url}")
    pushed = Pushed(reference, digest, image_id, signed)
    if attach is not None:
        attach(pushed)
    _, tag = split_reference(reference)
    with stop.unless_stopped(f"tagging; {digest} is in the registry untagged, no tag was set"):
        podman.tag(image_id, reference)
        stop.tagged.append(reference)
        Repository(split_reference(reference)[0], tls_verify=tls_verify).tag(digest, tag)
    served = registry.served(reference, tls_verify=tls_verify)
    if served is None or served.digest != digest:
        raise NestcustomError(
            f"the registry serves {served.digest if served else 'nothing'} under {reference}, "
            f"not the {digest} just tagged",
            "another push to the same tag raced this one; build again",
        )
    stop.pushed.append(reference)
    return digest
