"""A throwaway root for each test that runs the build helper (tests/universe/helper_root.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.universe.helper_root import HelperRoot, build_rpm, make_root


@pytest.fixture
def box(tmp_path: Path) -> HelperRoot:
    return make_root(tmp_path / "box")


@pytest.fixture(scope="session")
def tiny_rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Empty noarch RPMs by name, for the root's RPM database."""
    top = tmp_path_factory.mktemp("rpmbuild")
    names = ("nc-alpha", "nc-beta", "nc-gamma", "strace")
    return {name: build_rpm(top, name) for name in names}
