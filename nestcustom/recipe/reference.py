"""The recipe reference, written from the schema (so the docs cannot drift from it)."""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]


def _resolve(schema: Schema, root: Schema) -> Schema:
    ref = schema.get("$ref")
    if not ref:
        return schema
    target: Schema = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = {**_resolve(target, root), **{k: v for k, v in schema.items() if k != "$ref"}}
    return merged


def _kind(schema: Schema, root: Schema) -> str:
    schema = _resolve(schema, root)
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_kind(s, root) for s in schema["anyOf"])
    kind = str(schema.get("type", ""))
    if kind == "array":
        return f"list of {_kind(schema.get('items', {}), root)}"
    if kind == "object" and "properties" not in schema:
        return "mapping of text"
    words = {"string": "text", "object": "mapping", "boolean": "boolean", "integer": "integer"}
    return words.get(kind, kind)


def _rows(schema: Schema, root: Schema, prefix: str) -> list[str]:
    schema = _resolve(schema, root)
    if schema.get("type") == "array":
        items = _resolve(schema.get("items", {}), root)
        if "properties" in items:
            return _rows(items, root, prefix + "[]")
        # Text or a mapping (install: [strace, {from:, path:}]): the mapping's keys.
        branches = [_resolve(b, root) for b in items.get("anyOf", ())]
        return [r for b in branches if "properties" in b for r in _rows(b, root, prefix + "[]")]
    rows = []
    # `true` or a mapping (rechunk:): the mapping's keys.
    for branch in (_resolve(b, root) for b in schema.get("anyOf", ())):
        if "properties" in branch:
            rows.extend(_rows(branch, root, prefix))
    required = set(schema.get("required", ()))
    for key, sub in schema.get("properties", {}).items():
        full = _resolve(sub, root)
        name = f"{prefix}.{key}" if prefix else key
        text = full.get("description", "")
        if "default" in full:
            text += f" Default: `{json.dumps(full['default'])}`."
        if key in required:
            text = "**Required.** " + text
        rows.append(f"| `{name}` | {_kind(sub, root)} | {text.strip()} |")
        rows.extend(_rows(full, root, name))
    return rows


def schema_markdown(root: Schema) -> str:
    """docs/recipe-reference.md: every key of the recipe language, from the schema."""
    lines = [
        "# Recipe reference",
        "",
        "Every key of a nestcustom recipe, generated from the recipe schema",
        "(`nestcustom/recipe/schema/recipe.schema.json`) by `nestcustom schema --format",
        "markdown`: do not edit, run `scripts/update-reference`. A test keeps this file",
        "in step with the schema. The README has the tour and examples.",
        "",
        "| key | value | meaning |",
        "|---|---|---|",
        *_rows(root, root, ""),
    ]
    return "\n".join(lines) + "\n"
