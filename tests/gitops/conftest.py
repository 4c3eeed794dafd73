"""The GitOps tests' base: the universe's SP2 fixture base, pinned under a private tag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitops.helpers import pinned


@pytest.fixture(scope="session")
def gitops_base(nestos_sp2_image: str, base_workdir: Path) -> Iterator[str]:
    """A tag of the SP2 fixture base that no other session moves (see `pinned`)."""
    with pinned(nestos_sp2_image, base_workdir) as reference:
        yield reference
