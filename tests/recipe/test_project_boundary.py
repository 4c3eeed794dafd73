"""Every file a recipe builds from is inside the project, the recipe itself included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

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


def test_a_file_outside_the_project_is_refused_at_its_place_in_the_recipe(
    write_recipe: WriteRecipe, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "files:\n  - {src: files/motd, dest: /etc/motd}\n  - {src: files/key, dest: /etc/x}\n"
    )
    files = path.parent.parent / "files"
    files.mkdir(exist_ok=True)
    (files / "motd").write_text("hi\n")
    (outside / "secret").write_text("not the project's\n")
    (files / "key").symlink_to(outside / "secret")  # a link out of the project
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert [(p.location.line, p.path, p.message) for p in caught.value.problems] == [
        (5, "files[1].src", "'files/key' points outside the project directory")
    ]
