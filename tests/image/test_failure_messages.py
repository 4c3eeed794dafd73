"""What a failed build says: the step, where the recipe wrote it, and a hint that names
what really wrote to /var (a package, or the layer's own commands)."""

from __future__ import annotations

from pathlib import Path

from nestcustom.containerfile.render import render_containerfile
from nestcustom.image.build import _explain_failure
from nestcustom.image.events import BuildFailed
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

VAR_FAILURE = ('Found file: "var/lib/agent/state"',)


def failure_at(write_recipe: WriteRecipe, layers: str, step_name: str) -> str:
    recipe = load_recipe(
        write_recipe(f"name: r\nbase: {{image: {BASE}}}\nlayers:\n{layers}")
    ).recipe
    rendering = render_containerfile(recipe, "containerfiles/r")
    number = next(i for i, s in enumerate(rendering.steps, 1) if s.name == step_name)
    exc = BuildFailed("error: Found content in var", None, number, VAR_FAILURE)
    error = _explain_failure(recipe, rendering, exc)
    assert (
        f"{step_name} (" in error.message and "recipes/r.yaml:4:5) failed at step" in error.message
    )
    assert error.hint is not None
    return error.hint


def test_var_written_by_a_package(write_recipe: WriteRecipe, project: Path) -> None:
    hint = failure_at(write_recipe, "  - {name: pkgs, install: [nc-var]}\n", "layer pkgs")
    assert hint.startswith("a package wrote to /var, which a NestOS host drops")


def test_var_written_by_a_command_names_the_command(
    write_recipe: WriteRecipe, project: Path
) -> None:
    layers = "  - {name: cmds, install: [strace], run: [[mkdir, -p, /var/lib/agent]]}\n"
    hint = failure_at(write_recipe, layers, "layer cmds")
    assert hint.startswith(
        "a command or script of this layer (or a package it installed) wrote to /var"
    )
