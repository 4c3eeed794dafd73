"""The kernel-arguments label: written whenever the recipe has kernel-arguments:, so that
deploy knows what the image appends even when that is nothing."""

from __future__ import annotations

import re

import pytest

from nestcustom.containerfile.render import render_containerfile
from nestcustom.deploy.kargs import LABEL, parse_label, plan
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe


def label_of(write_recipe: WriteRecipe, kargs: str) -> str | None:
    path = write_recipe(f"name: r\nbase: {{image: {BASE}}}\n{kargs}")
    text = render_containerfile(load_recipe(path).recipe, "containerfiles/r").containerfile
    found = re.search(rf'{re.escape(LABEL)}="((?:[^"\\]|\\.)*)"', text)
    return found[1].replace('\\"', '"') if found else None


@pytest.mark.parametrize(
    "kargs", ["kernel-arguments: {append: []}\n", "kernel-arguments: {delete: [quiet]}\n"]
)
def test_an_image_that_appends_nothing_drops_what_the_previous_one_appended(
    write_recipe: WriteRecipe, kargs: str
) -> None:
    label = label_of(write_recipe, kargs)
    assert label is not None, "no label: deploy would keep the previous image's arguments"
    image = parse_label(label)
    assert image is not None and image.append == ()
    # The booted image appended nosmt: this one does not, so the host loses it.
    done = plan(image, booted_appends=("nosmt",), staged=["root=UUID=1", "nosmt", "quiet"])
    assert "--delete-if-present=nosmt" in done.options


def test_no_kernel_arguments_no_label(write_recipe: WriteRecipe) -> None:
    assert label_of(write_recipe, "layers: [{name: a, install: [strace]}]\n") is None
    assert parse_label(None) is None  # deploy then leaves the host's arguments alone
