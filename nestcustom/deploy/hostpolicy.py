"""A host's trust options for deploy; reading policy.json and registries.d is
image/trustpolicy.py's (promote checks an image's own files with the same code)."""

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
