"""A layer's `initramfs:` step regenerates the initramfs with the options it names (the
model the renderer reads; a layer step always regenerates, it is what the step is for)."""

from __future__ import annotations

from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Initramfs
from tests.conftest import BASE, WriteRecipe


def test_an_initramfs_step_regenerates_with_its_options(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n  - name: a\n    install: [strace]\n    steps:\n"
        "      - initramfs: {drivers: [nc_demo], omit: [nfs], install: [/etc/crypttab]}\n"
    )
    (step,) = load_recipe(path).recipe.layers[0].steps
    assert step.kind == "initramfs"
    assert step.initramfs == Initramfs(
        regenerate=True, drivers=("nc_demo",), omit=("nfs",), install=("/etc/crypttab",)
    )
