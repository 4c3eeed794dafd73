"""The README's table of build-time values, generated from values.VALUES."""

from __future__ import annotations

from nestcustom.recipe.values import VALUES, values_markdown
from tests.conftest import ROOT


def test_the_table_of_values_says_when_each_is_known() -> None:
    table = values_markdown()
    assert table in (ROOT / "README.md").read_text()  # the README carries it as generated
    header, rule, *rows = table.splitlines()
    assert (header, rule) == ("  | value | meaning |", "  |---|---|")
    assert [row.split("`")[1] for row in rows] == [f"{{{{{v.name}}}}}" for v in VALUES]
    by_name = dict(zip((v.name for v in VALUES), rows, strict=True))
    assert by_name["recipe.name"] == (
        "  | `{{recipe.name}}` | the recipe's name:; known from the recipe (e.g. `nestos-debug`) |"
    )
    assert by_name["os.id"] == (
        "  | `{{os.id}}` | ID from the image's os-release; read from the image in the build "
        "(e.g. `nestos`) |"
    )
    assert table.endswith(" |\n")
    assert values_markdown("").startswith("| value | meaning |\n|---|---|\n| `{{kernel}}` |")
