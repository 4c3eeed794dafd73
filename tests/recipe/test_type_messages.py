"""What a value of the wrong type is told: what YAML read it as (a number, a date, a
boolean, null) and how to keep it as written, or what was expected and what came."""

from __future__ import annotations

import pytest

from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

LAYER = "layers: [{name: l, install: [x]}]\n"


@pytest.mark.parametrize(
    ("body", "path", "message", "hint"),
    [
        ("name: [a]\n", "name", "expected text, got a list", None),
        ("name: {a: 1}\n", "name", "expected text, got a mapping", None),
        ("name: ~\n", "name", "'~' was read as null (no value), but text is expected",
         'quote it to keep it as written: "~"'),
        ("name: 2024-01-01\n", "name",
         "'2024-01-01' was read as a date \"2024-01-01\", but text is expected",
         'quote it to keep it as written: "2024-01-01"'),
        ("name: 1.50\n", "name", "'1.50' was read as the number 1.5, but text is expected",
         'quote it to keep it as written: "1.50"'),
        ("name: yes\n", "name", "'yes' was read as the boolean true, but text is expected",
         'quote it to keep it as written: "yes"'),
        ("name: r\nlayers: {a: 1}\n", "layers", "expected a list, got a mapping", None),
        ("name: r\nlayers: 5\n", "layers", "expected a list, got a number", None),
        ("name: r\nlayers: true\n", "layers", "expected a list, got a boolean", None),
        ("name: r\nrepos: [{id: a, baseurl: 'http://x', gpgcheck: 'yes'}]\n" + LAYER,
         "repos[0].gpgcheck", "expected true or false, got text", None),
        ("name: r\nkernel-modules: [{name: m, load: null}]\n", "kernel-modules[0].load",
         "expected true or false, got nothing (null)", None),
        ("name: r\nselinux: {priority: high}\n" + LAYER, "selinux.priority",
         "expected a whole number, got text", None),
        ("name: r\n" + LAYER + "tests: {commands: [{run: [x], timeout: soon}]}\n",
         "tests.commands[0].timeout", "expected number, got text", None),
        ("name: r\n" + LAYER + "tests: {commands: [{run: [x], exit: 2024-01-01}]}\n",
         "tests.commands[0].exit", "expected a whole number, got date", None),
    ],
)  # fmt: skip
def test_a_wrong_type_is_named(
    write_recipe: WriteRecipe, body: str, path: str, message: str, hint: str | None
) -> None:
    name, _, rest = body.partition("\n")
    recipe = write_recipe(
        f"{name}\nbase: {{image: {BASE}}}\n{rest}"
        if rest
        else f"{name}\nbase: {{image: {BASE}}}\n{LAYER}"
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    found = [(p.path, p.message, p.hint) for p in caught.value.problems]
    assert (path, message, hint) in found, found
