"""Shared fixtures: the repository root, fixture recipes, and a scratch project."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# The local universe's fixtures (RPM repo, fixture bases, registry), for every test that
# asks for one; they start lazily, so the fast tests never touch podman.
pytest_plugins = ["tests.universe.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project: recipes/, files/motd."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd").write_text("hello\n")
    return tmp_path


WriteRecipe = Callable[..., Path]


@pytest.fixture
def write_recipe(project: Path) -> WriteRecipe:
    """Write recipes/NAME.yaml in the scratch project; returns its path."""

    def write(text: str, name: str = "r") -> Path:
        path = project / "recipes" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write
