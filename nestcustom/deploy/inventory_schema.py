"""The inventory's JSON Schema (shipped in the package) and its problems, located and worded.

The schema is the single description of what an inventory may hold; this
module turns each violation into a `Problem` at FILE:LINE:COL with a hint.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from nestcustom.errors import Location, Problem
from nestcustom.recipe.schema import format_path
from nestcustom.recipe.source import origin_of

Path_ = tuple[str | int, ...]

_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}
_READ_AS = {
    "tag:yaml.org,2002:bool": "the boolean",
    "tag:yaml.org,2002:int": "the number",
    "tag:yaml.org,2002:float": "the number",
    "tag:yaml.org,2002:null": "null (no value)",
}


@cache
def inventory_schema() -> dict[str, Any]:
    text = resources.files("nestcustom.deploy").joinpath("inventory.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(shape: str) -> Draft202012Validator:
    root = inventory_schema()
    return Draft202012Validator({**root["$defs"][shape], "$defs": root["$defs"]})


def schema_problems(doc: Any, shape: str, fallback: Location) -> list[Problem]:
    """Every violation of `$defs/<shape>` ("own" or "ansible") in `doc`, in file order."""
    problems: list[Problem] = []
    for error in _validator(shape).iter_errors(doc):
        for problem in _explain(doc, error, fallback):
            if problem not in problems:
                problems.append(problem)
    return sorted(problems, key=lambda p: (p.location.line, p.location.column))


def locate(doc: Any, path: Path_, fallback: Location, *, key: bool = False) -> Location:
    origin = origin_of(doc, path, key=key)
    return origin.location if origin else fallback


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    return "a list" if isinstance(value, list) else "a mapping"


def _explain(doc: Any, error: ValidationError, fallback: Location) -> Iterator[Problem]:
    path: Path_ = tuple(error.absolute_path)
    where = locate(doc, path, fallback)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind, value = str(error.validator), error.instance
    rule: Any = error.validator_value  # the keyword's value: a list, a type name, ...
    if "propertyNames" in error.schema_path:
        key_path = (*path, str(value))
        yield Problem(
            locate(doc, key_path, fallback, key=True),
            format_path(key_path),
            f"{value!r} {schema.get('x-message', 'is not allowed as a name')}",
            schema.get("x-hint"),
        )
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        for extra in sorted(set(value) - set(allowed)):
            close = difflib.get_close_matches(extra, allowed, n=1)
            yield Problem(
                locate(doc, (*path, extra), fallback, key=True),
                format_path((*path, extra)),
                f"unknown key {extra!r}",
                f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}",
            )
    elif kind == "required" and isinstance(value, dict):
        for missing in rule:
            if missing not in value:
                yield Problem(where, format_path(path), f"missing required key {missing!r}")
    elif kind == "type":
        names = rule if isinstance(rule, list) else [rule]
        want = " or ".join(_WORDS.get(str(n), str(n)) for n in names)
        origin = origin_of(doc, path)
        if origin is not None and origin.plain and origin.tag in _READ_AS and "string" in names:
            yield Problem(
                where,
                format_path(path),
                f"{origin.raw!r} was read as {_READ_AS[origin.tag]}, but {want} is expected",
                f'quote it to keep it as written: "{origin.raw}"',
            )
        else:
            yield Problem(where, format_path(path), f"expected {want}, got {_describe(value)}")
    elif kind in ("minimum", "maximum"):
        yield Problem(
            where, format_path(path), f"{value} is out of range", "a port is between 1 and 65535"
        )
    elif kind in ("minItems", "minProperties"):
        yield Problem(where, format_path(path), "is empty", "list at least one host")
    elif "x-message" in schema:
        yield Problem(
            where, format_path(path), f"{value!r} {schema['x-message']}", schema.get("x-hint")
        )
    else:  # pragma: no cover - every keyword the schema uses is worded above
        yield Problem(where, format_path(path), error.message)
