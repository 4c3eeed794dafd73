"""What a ring name is: one rule for `promote --ring` (nestcustom.fleet.promotions) and a
recipe's `updates: ring:` (the ring tag a host follows is IMAGE:ring-NAME)."""

from __future__ import annotations

import re

RING_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
RING_HINT = (
    "lower-case letters, digits and '-', starting with a letter or digit "
    "(it becomes the tag ring-NAME), e.g. canary or stable"
)


def is_ring_name(ring: str) -> bool:
    return RING_NAME.fullmatch(ring) is not None
