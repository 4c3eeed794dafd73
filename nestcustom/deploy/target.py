"""The image a rollout moves hosts to: one reference, pinned to one digest before any host.

A tag is resolved once, so a tag that moves mid-rollout cannot split the fleet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nestcustom.errors import BadInputError
from nestcustom.image import registry
from nestcustom.recipe.schema import recipe_schema


@dataclass(frozen=True)
class Target:
    pinned: str  # REPO@sha256:...
    digest: str
    arch: str | None
    signed: bool = False

    @property
    def ostree_ref(self) -> str:
        if self.signed:
            return f"ostree-image-signed:docker://{self.pinned}"
        return f"ostree-unverified-registry:{self.pinned}"


def resolve_target(reference: str, signed: bool, tls_verify: bool) -> Target:
    """Pin the reference to one digest, once: a tag moving mid-rollout cannot split the fleet."""
    repository, _, digest = reference.partition("@")
    # The recipe schema's image-reference rule, so both read references alike.
    image_rule = recipe_schema()["properties"]["base"]["properties"]["image"]
    if not re.fullmatch(image_rule["pattern"], repository):
        raise BadInputError(
            f"{reference!r} is not a valid image reference",
            "write REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST (as `nestcustom build --push` prints)",
        )
    if not digest:
        digest, _ = registry.manifest(reference, tls_verify=tls_verify)
        last = repository.rsplit("/", 1)[-1]
        repository = repository.rsplit(":", 1)[0] if ":" in last else repository
    elif not digest.startswith("sha256:") or len(digest) != 71:
        raise BadInputError(f"{reference}: the digest must be sha256: and 64 hex digits")
    pinned = f"{repository}@{digest}"
    arch = registry.image_architecture(pinned, tls_verify=tls_verify)
    return Target(pinned, digest, arch, signed)
