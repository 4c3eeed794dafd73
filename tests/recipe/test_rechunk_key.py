"""The recipe key `rechunk:`: true or its settings, in the digest only when set, bad values
located."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Rechunk
from tests.conftest import BASE, WriteRecipe

HEAD = f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [strace]}}]\n"


@pytest.fixture(autouse=True)
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)  # errors name recipes/r.yaml


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", None),
        ("rechunk: false\n", None),
        ("rechunk: true\n", Rechunk(24)),
        ("rechunk: {}\n", Rechunk(24)),
        ("rechunk: {max-layers: 40}\n", Rechunk(40)),
    ],
)
def test_true_or_settings(write_recipe: WriteRecipe, line: str, expected: Rechunk | None) -> None:
    assert load_recipe(write_recipe(HEAD + line)).recipe.rechunk == expected


def test_the_digest_changes_with_rechunk_and_not_without(write_recipe: WriteRecipe) -> None:
    digests = [
        load_recipe(write_recipe(HEAD + line)).recipe.digest
        for line in ("", "rechunk: false\n", "rechunk: true\n", "rechunk: {max-layers: 40}\n")
    ]
    assert digests[0] == digests[1]
    assert len(set(digests)) == 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "rechunk: {max-layers: 11}",
            "recipes/r.yaml:4:23: rechunk.max-layers: 11 is less than the minimum of 12",
        ),
        (
            "rechunk: {layers: 20}",
            "recipes/r.yaml:4:11: rechunk.layers: unknown key 'layers'\n  hint: did you mean 'max-layers'?",
        ),
        (
            "rechunk: yes please",
            "recipes/r.yaml:4:10: rechunk: 'yes please' is neither true/false nor a mapping of rechunk's settings",
        ),
    ],
)
def test_bad_values_are_located(write_recipe: WriteRecipe, line: str, expected: str) -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe(write_recipe(HEAD + line + "\n"))
    (problem,) = caught.value.problems
    assert problem.format().startswith(expected)
