"""The image a rollout moves hosts to: one reference, pinned to one digest, checked once.

A tag is resolved once, so a tag that moves mid-rollout cannot split the fleet,
and the image is checked before any host is touched: it can be read, it is
bootable (`ostree.bootable`, which rpm-ostree 2022.16 requires), and its
architecture is known for each host's preflight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nestcustom.deploy.kargs import LABEL as KARGS_LABEL
from nestcustom.deploy.kargs import ImageKargs, parse_label
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.image import registry
from nestcustom.recipe.schema import recipe_schema

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Target:
    pinned: str  # REPO@sha256:...
    digest: str
    arch: str | None
    signed: bool = False
    labels: tuple[tuple[str, str], ...] = ()  # the image's labels (its signing policy, trust.py)
    kargs: ImageKargs | None = None  # its kernel arguments (label), None: it sets none

    @property
    def ostree_ref(self) -> str:
        if self.signed:
            return f"ostree-image-signed:docker://{self.pinned}"
        return f"ostree-unverified-registry:{self.pinned}"


def split_reference(reference: str) -> tuple[str, str | None]:
    """(repository without tag, digest or None) of REPO[:TAG][@sha256:HEX]; bad input refused."""
    named, _, digest = reference.partition("@")
    # The recipe schema's image-reference rule, so both read references alike.
    image_rule = recipe_schema()["properties"]["base"]["properties"]["image"]
    if not re.fullmatch(image_rule["pattern"], named):
        raise BadInputError(
            f"{reference!r} is not a valid image reference",
            "write REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST (as `nestcustom build --push` prints)",
        )
    if digest and not _DIGEST.match(digest):
        raise BadInputError(
            f"{reference}: the digest must be sha256: and 64 lower-case hex digits",
            "copy it as `nestcustom build --push` or `skopeo inspect` prints it",
        )
    last = named.rsplit("/", 1)[-1]
    repository = named.rsplit(":", 1)[0] if ":" in last else named
    return repository, digest or None


def resolve_target(reference: str, signed: bool, tls_verify: bool) -> Target:
    """Pin the reference to one digest and check the image, once, before any host."""
    repository, digest = split_reference(reference)
    # With a digest the tag (REF:tag@sha256:...) is only a label: the digest is what is deployed.
    pinned = f"{repository}@{digest}" if digest else reference
    served, arch, labels = registry.image_for_rollout(pinned, tls_verify=tls_verify)
    if digest and served != digest:
        raise NestcustomError(f"{pinned} is served as {served}, not {digest}")
    if "ostree.bootable" not in labels:
        raise BadInputError(
            f"{reference} is not a bootable image: it has no ostree.bootable label",
            "build it FROM a NestOS base (which carries the label); rpm-ostree refuses it on every host",
        )
    kargs = parse_label(labels.get(KARGS_LABEL))
    return Target(
        f"{repository}@{served}", served, arch, signed, tuple(sorted(labels.items())), kargs
    )
