"""The reference's rows for a list of text or mappings (`install: [strace, {from:, path:}]`):
the mapping branch's keys are listed under the list, through a $ref too."""

from __future__ import annotations

from nestcustom.recipe.reference import schema_markdown

SCHEMA = {
    "type": "object",
    "properties": {
        "install": {
            "type": "array",
            "description": "Packages.",
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {"$ref": "#/$defs/files"},
                ]
            },
        },
        "urls": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "object", "properties": {"url": {"type": "string"}}},
                    {"type": "string"},
                ]
            },
        },
        "names": {"type": "array", "items": {"anyOf": [{"type": "string"}]}},
    },
    "$defs": {
        "files": {
            "type": "object",
            "required": ["from"],
            "properties": {
                "from": {"type": "string", "description": "A stage."},
                "path": {"type": "string"},
            },
        }
    },
}


def test_the_mapping_branches_of_a_list_are_its_rows() -> None:
    rows = schema_markdown(SCHEMA).split("|---|---|---|\n", 1)[1].splitlines()
    assert rows == [
        "| `install` | list of text or mapping | Packages. |",
        "| `install[].from` | text | **Required.** A stage. |",
        "| `install[].path` | text |  |",
        "| `urls` | list of mapping or text |  |",
        "| `urls[].url` | text |  |",
        "| `names` | list of text |  |",
    ]
