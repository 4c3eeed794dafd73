"""Every file a recipe builds from is inside the project, the recipe itself included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE

RECIPE = f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [strace]}}]\n"


def nestcustom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize("command", [("validate",), ("render",), ("build", "--json")])
def test_a_recipe_linked_from_outside_the_project_is_refused(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    project, outside = tmp_path / "project", tmp_path / "elsewhere"
    (project / "recipes").mkdir(parents=True)
    outside.mkdir()
    (outside / "r.yaml").write_text(RECIPE)
    (project / "recipes" / "r.yaml").symlink_to(outside / "r.yaml")
    result = nestcustom(command[0], "recipes/r.yaml", *command[1:], cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"recipes/r.yaml: the recipe is a link to {outside / 'r.yaml'}, outside the project "
        f"directory {project}"
    ) in result.stderr
    assert "FROM" not in result.stdout  # nothing rendered


def test_a_recipe_linked_inside_the_project_is_fine(tmp_path: Path) -> None:
    (tmp_path / "recipes" / "shared").mkdir(parents=True)
    (tmp_path / "recipes" / "shared" / "r.yaml").write_text(RECIPE)
    (tmp_path / "recipes" / "r.yaml").symlink_to(tmp_path / "recipes" / "shared" / "r.yaml")
    result = nestcustom("validate", "recipes/r.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
