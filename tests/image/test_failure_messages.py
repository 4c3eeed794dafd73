"""What a failed build says: the step, where the recipe wrote it, and a hint that names
what really wrote to /var (a package, or the layer's own commands)."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_a_storage_race_is_built_once_more_and_said(project: Path) -> None:
    """Another process removed images during the cache lookup: one more try, one line."""
    from nestcustom.image.build import _build_past_storage_race
    from nestcustom.image.events import BuildEvent, BuildResult
    from nestcustom.image.publish import StopFlag

    answers: list[BuildFailed | BuildResult] = [
        BuildFailed("layer not known", None, 2, ()),
        BuildResult("abc123", (0.1,), ()),
    ]

    def build() -> BuildResult:
        answer = answers.pop(0)
        if isinstance(answer, BuildFailed):
            raise answer
        return answer

    heard: list[BuildEvent] = []
    result = _build_past_storage_race(build, heard.append, StopFlag())
    assert result.image_id == "abc123"
    assert [e.text for e in heard] == [
        "podman's storage changed under the build (layer not known): another process removed "
        "images meanwhile; building once more"
    ]


@pytest.mark.parametrize("second", ["layer not known", "exit status 1"])
def test_only_one_more_try_and_only_for_a_storage_race(project: Path, second: str) -> None:
    from nestcustom.image.build import _build_past_storage_race
    from nestcustom.image.events import BuildResult
    from nestcustom.image.publish import StopFlag

    tries: list[str] = []

    def build() -> BuildResult:
        tries.append("x")
        raise BuildFailed("layer not known" if len(tries) == 1 else second, None, 2, ())

    with pytest.raises(BuildFailed, match=second):
        _build_past_storage_race(build, lambda e: None, StopFlag())
    assert len(tries) == 2

    def step_fails() -> BuildResult:
        tries.append("y")
        raise BuildFailed("error building at STEP: exit status 1", None, 2, ())

    with pytest.raises(BuildFailed):
        _build_past_storage_race(step_fails, lambda e: None, StopFlag())
    assert tries.count("y") == 1
