"""Moving a ring tag to a digest (or back), checked against the registry and journalled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.fleet import promotetrust, promotions
from nestcustom.fleet.promotetrust import Trust
from nestcustom.fleet.promotions import Promotion
from nestcustom.image import registry


@dataclass(frozen=True)
class Moved:
    """What a promotion did: the ring's tag, the digest it had and the one it serves now."""

    tag_reference: str
    before: str | None
    after: str
    changed: bool  # False when the ring already served the digest (nothing was written)
    trust: Trust | None = None  # the signature check; None when nothing moved


def _serving(tag_reference: str, tls_verify: bool) -> str | None:
    found = registry.served(tag_reference, tls_verify=tls_verify)
    return found.digest if found else None


def _move(
    image: str,
    ring: str,
    digest: str,
    journal: Path,
    *,
    undo: bool,
    unsigned: bool,
    tls_verify: bool,
) -> Moved:
    tag_reference = f"{image}:{promotions.ring_tag(ring)}"
    before = _serving(tag_reference, tls_verify)
    if before == digest:
        return Moved(tag_reference, before, digest, changed=False)  # a re-run changes nothing
    pinned = f"{image}@{digest}"
    found = registry.served(pinned, tls_verify=tls_verify)
    if found is None:
        raise BadInputError(
            f"{pinned} is not in the registry",
            "promote a digest that `nestcustom build --push` printed for this image",
        )
    # Before anything is written: a refusal leaves the ring and the journal as they were.
    trust = promotetrust.check(
        image, digest, found.labels, unsigned=unsigned, tls_verify=tls_verify
    )
    registry.retag(pinned, tag_reference, tls_verify=tls_verify)
    now_serving = _serving(tag_reference, tls_verify)
    if now_serving != digest:
        raise NestcustomError(
            f"{tag_reference} serves {now_serving or 'nothing'} after the move, not {digest}",
            "the registry rewrote the manifest; promote by digest on a registry that keeps it",
        )
    promotions.record(journal, Promotion(promotions.now(), image, ring, before, digest, undo))
    return Moved(tag_reference, before, digest, changed=True, trust=trust)


def promote(
    pinned: str, ring: str, journal: Path, *, unsigned: bool = False, tls_verify: bool = True
) -> Moved:
    """Point IMAGE:ring-RING at the digest of `pinned` (IMAGE@DIGEST) and journal it.

    Where the image carries a signing policy for its repository, the digest must be
    signed by the image's own key (promotetrust.py) unless `unsigned`.
    """
    image, digest = promotions.split_pinned(pinned)
    promotions.check_ring(ring)
    promotions.load(journal)  # a damaged journal is said before the registry is touched
    return _move(image, ring, digest, journal, undo=False, unsigned=unsigned, tls_verify=tls_verify)


def undo(
    image: str, ring: str, journal: Path, *, unsigned: bool = False, tls_verify: bool = True
) -> Moved:
    """Move the ring back to the digest it had before its last promotion (checked as a
    promotion is: the digest it goes back to may have lost its signature since)."""
    promotions.check_repository(image)
    promotions.check_ring(ring)
    history = promotions.load(journal)
    current = _serving(f"{image}:{promotions.ring_tag(ring)}", tls_verify)
    target = promotions.undo_target(history, image, ring, current)
    return _move(image, ring, target, journal, undo=True, unsigned=unsigned, tls_verify=tls_verify)
