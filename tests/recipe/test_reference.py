"""The recipe reference (`nestcustom schema --format markdown`, README's reference table),
written from the schema: every key, its kind, and what the schema says of it."""

from __future__ import annotations

import subprocess
import sys

from nestcustom.recipe.reference import schema_markdown

SCHEMA = {
    "type": "object",
    "required": ["name", "steps"],
    "properties": {
        "name": {"type": "string", "description": "  The name. "},
        "mode": {"enum": ["fast", "safe"], "default": "safe", "description": "How."},
        "count": {"type": "integer", "default": 3},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean", "default": False, "description": "On or off."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "either": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
        "words": {"type": "array", "items": {"type": "string"}, "description": "Plain words."},
        "where": {"$ref": "#/$defs/place", "description": "Overrides the place's own."},
    },
    "$defs": {
        "step": {
            "type": "object",
            "required": ["run"],
            "properties": {
                "run": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                "env": {"$ref": "#/$defs/env"},
                "nested": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"x": {"type": "string"}}},
                },
            },
        },
        "env": {"type": "object", "description": "Values."},
        "place": {
            "type": "object",
            "description": "A place.",
            "properties": {"path": {"type": "string", "default": "/"}},
        },
    },
}


def table(markdown: str) -> list[str]:
    """The reference's table: its lines from the header row on (a title and a paragraph
    that says how the file is made come first)."""
    lines = markdown.splitlines()
    assert lines[0] == "# Recipe reference"
    assert "scripts/update-reference" in markdown.split("| key |")[0]
    return lines[lines.index("| key | value | meaning |") :]


def test_every_key_is_a_row_with_its_kind_and_meaning() -> None:
    assert table(schema_markdown(SCHEMA)) == [
        "| key | value | meaning |",
        "|---|---|---|",
        "| `name` | text | **Required.**   The name. |",
        '| `mode` | `fast` \\| `safe` | How. Default: `"safe"`. |',
        "| `count` | integer | Default: `3`. |",
        "| `ratio` | number |  |",
        "| `flag` | boolean | On or off. Default: `false`. |",
        "| `labels` | mapping of text |  |",
        "| `either` | text or list of text |  |",
        "| `steps` | list of mapping | **Required.** |",
        "| `steps[].run` | list of list of text | **Required.** |",
        "| `steps[].env` | mapping of text | Values. |",
        "| `steps[].nested` | list of mapping |  |",
        "| `steps[].nested[].x` | text |  |",
        "| `words` | list of text | Plain words. |",
        "| `where` | mapping | Overrides the place's own. |",
        '| `where.path` | text | Default: `"/"`. |',
    ]


def test_a_list_without_item_schema_and_an_untyped_key() -> None:
    schema = {"properties": {"any": {}, "many": {"type": "array"}}}
    assert table(schema_markdown(schema)) == [
        "| key | value | meaning |",
        "|---|---|---|",
        "| `any` |  |  |",
        "| `many` | list of  |  |",
    ]


def test_the_cli_prints_the_reference_of_the_shipped_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", "schema", "--format", "markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = table(done.stdout)
    assert lines[:2] == ["| key | value | meaning |", "|---|---|---|"]
    assert lines[2].startswith("| `name` | text | **Required.** Image name")
    rows = {line.split(" | ")[0]: line for line in lines[2:]}
    assert rows["| `layers[].swap[].remove`"] == (
        "| `layers[].swap[].remove` | text or list of text | **Required.** |"
    )
    assert rows["| `base.flavor`"].startswith("| `base.flavor` | `nestos` \\| `newstart` | nestos:")
    assert rows["| `repos[].gpgcheck`"].endswith("Default: `true`. |")
    assert rows["| `layers[].env`"].startswith("| `layers[].env` | mapping of text |")
