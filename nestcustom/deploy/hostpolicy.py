"""A host's trust, as containers/image reads it: policy.json and registries.d
(containers-policy.json(5), containers-registries.d(5)), judged for one image.

Scopes of the `docker` transport match the image's repository: the most
specific of REPO@DIGEST, REPO, its namespaces, its registry and
`*.domain` wildcards wins, else the transport's "" entry, else `default`.
registries.d's `lookaside:` (or its old name `sigstore:`) says where a scope's
simple signatures are; the most specific scope wins, else `default-docker`.
"""

from __future__ import annotations

from dataclasses import dataclass

# The reading itself is the image stage's (promote checks an image's own files with it).
from nestcustom.image.trustpolicy import (
    ACCEPT_ANYTHING,
    GpgRequirement,
    Judgement,
    judge,
    lookaside,
    scope_candidates,
)

__all__ = [
    "ACCEPT_ANYTHING",
    "GpgRequirement",
    "Judgement",
    "TrustOptions",
    "judge",
    "lookaside",
    "scope_candidates",
]


@dataclass(frozen=True)
class TrustOptions:
    """Whether and how a rollout proves signatures on its hosts."""

    required: bool  # the image carries a policy for its own scope, or --signed was given
    reason: str  # why, in words
    unsigned: bool = False  # --unsigned: skip it, loudly
    bootstrap: bool = False  # --bootstrap-trust: hosts without a policy for the image get it
