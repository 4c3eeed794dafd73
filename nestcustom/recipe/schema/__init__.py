"""The recipe JSON Schema (the single source of the recipe language) and its validation.

Messages are written for people: the schema's own `x-message` and `x-hint`
keys carry the wording, unknown keys get a "did you mean", and a value that
YAML read as a boolean or a number where text was meant says how to quote it.

Two validators read the same schema. fastjsonschema compiles it to plain
Python and answers "valid" in a few microseconds, which is what almost every
recipe is; only when it says "invalid" does jsonschema walk the document to
collect every error with its path, for the messages. Both anchor a pattern's
`$` at the very end of the text (JSON Schema's meaning; Python's `$` would
also accept a trailing newline).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import json
import marshal
import os
import re
import tempfile
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, cast

from nestcustom.errors import Location, Problem
from nestcustom.recipe.source import Origin, origin_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

Path_ = tuple[str | int, ...]

_TAG_NAMES = {
    "tag:yaml.org,2002:bool": "the boolean",
    "tag:yaml.org,2002:int": "the number",
    "tag:yaml.org,2002:float": "the number",
    "tag:yaml.org,2002:null": "null (no value)",
    "tag:yaml.org,2002:timestamp": "a date",
}
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@cache
def recipe_schema() -> dict[str, Any]:
    text = (
        resources.files("nestcustom.recipe.schema")
        .joinpath("recipe.schema.json")
        .read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def _inline_refs(node: Any, root: dict[str, Any]) -> Any:
    """The schema with every local $ref replaced by its target (the recipe schema has no cycles).

    Validation then never resolves a reference, which was a fifth of its time.
    """
    if isinstance(node, dict):
        if "$ref" in node and str(node["$ref"]).startswith("#/"):
            target: Any = root
            for part in str(node["$ref"])[2:].split("/"):
                target = target[part]
            merged = {
                **_inline_refs(target, root),
                **{k: v for k, v in node.items() if k != "$ref"},
            }
            return {k: _inline_refs(v, root) for k, v in merged.items()}
        return {k: _inline_refs(v, root) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(item, root) for item in node]
    return node


@cache
def _fast_validator() -> Callable[[Any], object]:
    """The schema compiled to Python: raises on the first error, else returns."""
    import fastjsonschema

    # The recipe schema only uses keywords draft 7 already has; fastjsonschema knows drafts
    # up to 7. use_default=False: validation must never write defaults into the document.
    # $refs inlined: fastjsonschema calls a function per $ref and formats its error path
    # on every call (`.format(**locals())`), which was three quarters of its time.
    # _inline_refs builds a new tree, so the cached schema is never rewritten.
    root = recipe_schema()
    schema = _inline_refs(root, root)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    key = hashlib.sha256(
        json.dumps(schema, sort_keys=True).encode()
        + fastjsonschema.VERSION.encode()
        + _GENERATOR.encode()
        + importlib.util.MAGIC_NUMBER
    ).hexdigest()[:32]
    directory = cache_dir()
    cached = directory / f"recipe-validator-{key}.marshal" if directory else None
    code = _load_code(cached) if cached else None
    if code is None:
        source = _generate_code(schema)
        code = compile(source, "<recipe schema validator>", "exec")
        if cached:
            _store_code(cached, code)
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - code fastjsonschema generated from our own schema
    [validate] = [v for k, v in namespace.items() if k.startswith("validate") and callable(v)]
    return cast("Callable[[Any], object]", validate)


# Bump when _generate_code changes what it emits: the cache key holds it.
_GENERATOR = "trials-raise-bare, not-string-pattern-tested, no-definition: 3"


def _generate_code(schema: dict[str, Any]) -> str:
    """fastjsonschema's code for `schema`, with a cheap raise wherever a failure is only tried.

    The branches of anyOf, oneOf, not, if, contains and propertyNames are tried inside a
    `try`, and their failure is control flow: a valid package name fails the `not` that
    keeps Bodhi pages out, for instance. fastjsonschema raised a fully worded exception
    there, its path formatted with `.format(**locals())` in a function of thousands of
    locals (the whole schema is inlined into one), twice per failure: that was four fifths
    of validating a valid recipe, and grew with every package. A tried branch now raises
    a bare exception; every error that leaves the validator keeps its full wording.
    """
    from fastjsonschema import VERSION
    from fastjsonschema.draft04 import DOLLAR_FINDER
    from fastjsonschema.draft07 import CodeGeneratorDraft07

    class Generator(CodeGeneratorDraft07):
        trials = 0

        @contextlib.contextmanager
        def trial_validation(self) -> Iterator[None]:
            self.trials += 1
            try:
                with super().trial_validation():
                    yield
            finally:
                self.trials -= 1

        def exc(
            self, msg: str, *args: Any, append_to_msg: str | None = None, rule: str | None = None
        ) -> None:
            if self.trials:
                self.l('raise JsonSchemaValueException("")')
                return
            # The message and the path, as fastjsonschema words them (validate_document shows
            # them if jsonschema ever disagrees), without the subschema (`definition=`), which
            # nothing reads: its literal in every raise made the code four times its size.
            arg = f'"{msg}"' + (f" + ({append_to_msg})" if append_to_msg else "")
            definition = self._definition
            rule_value = definition.get(rule) if isinstance(definition, dict) else None
            self.l(
                f'raise JsonSchemaValueException({arg}, value={{variable}}, name="{{name}}", '
                f"rule={rule!r})",
                *args,
                definition_rule=self.e(rule_value),  # type: ignore[no-untyped-call]
            )

        def generate_not(self) -> None:
            # `not: {type: string, pattern: P}` (no Bodhi page where an RPM is meant) is one
            # test, not a tried branch: a valid package needs no raise at all.
            rule: Any = self._definition["not"]  # type: ignore[index]
            if (
                isinstance(rule, dict)
                and rule.keys() == {"type", "pattern"}
                and rule["type"] == "string"
            ):
                pattern = rule["pattern"]
                self._compile_regexps[pattern] = re.compile(DOLLAR_FINDER.sub(r"\\Z", pattern))
                test = "if isinstance({variable}, str) and REGEX_PATTERNS[{}].search({variable}):"
                with self.l(test, repr(pattern)):
                    self.exc("{name} must NOT match a disallowed definition", rule="not")
                return
            super().generate_not()  # type: ignore[no-untyped-call]

    generator = Generator(schema, use_default=False)  # type: ignore[no-untyped-call]
    return f'VERSION = "{VERSION}"\n{generator.global_state_code}\n{generator.func_code}'


# Generating the validator (~0.06 s) and compiling its 800 KB of Python (~0.1 s) took half
# of a `nestcustom validate`; the compiled code object is kept between runs, as Python keeps
# .pyc files, keyed by everything that shapes it (schema, fastjsonschema, bytecode version).
def cache_dir() -> Path | None:
    """nestcustom's cache directory ($XDG_CACHE_HOME/nestcustom), if the user has one."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        str(Path("~/.cache").expanduser()) if "HOME" in os.environ else ""
    )
    return Path(base) / "nestcustom" if base else None


def _load_code(path: Path) -> CodeType | None:
    try:
        # Our own cache in the user's home, trusted as Python trusts its .pyc files there.
        code = marshal.loads(path.read_bytes())  # noqa: S302
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _store_code(path: Path, code: CodeType) -> None:
    """Best effort: a read-only or full home only means compiling again next time."""
    written: Path | None = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as out:
            written = Path(out.name)
            out.write(marshal.dumps(code))
        written.replace(path)  # atomic: a reader sees the old file or the whole new one
    except OSError:
        if written is not None:
            with contextlib.suppress(OSError):
                written.unlink()


@cache
def _full_validator() -> Validator:
    """jsonschema, which reports every error with its path; used only on invalid recipes."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Validator, rule: str, instance: object, schema: object) -> Any:
        if isinstance(instance, str) and not re.search(_anchored(rule), instance):
            yield ValidationError(f"{instance!r} does not match {rule!r}")

    strict = validators.extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]
    schema = recipe_schema()
    return strict(_inline_refs(schema, schema))  # type: ignore[no-any-return]


@cache
def _anchored(rule: str) -> str:
    """A final `$` matches only at the very end, as in JSON Schema (ECMA 262) patterns."""
    return rule[:-1] + r"\Z" if rule.endswith("$") and not rule.endswith(r"\$") else rule


def format_path(path: Path_) -> str:
    """`layers[1].install[0]`, `labels["org.example.x"]`: the path a user can find."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _SIMPLE_KEY.match(step):
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step)}]"
    return out


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return type(value).__name__


_TYPE_WORDS = {
    "string": "text",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "integer": "a whole number",
}


def validate_document(doc: Any, fallback: Location) -> list[Problem]:
    """Every schema problem in `doc` (a YamlMap tree), located and worded for people."""
    from fastjsonschema import JsonSchemaValueException

    try:
        _fast_validator()(doc)
        return []
    except JsonSchemaValueException as exc:
        first = exc  # find every error, with its path, the slow way
    problems: list[Problem] = []
    for error in _full_validator().iter_errors(doc):
        problems.extend(p for p in _explain(doc, error, fallback) if p not in problems)
    if not problems:  # the two validators disagree: never let an invalid recipe through
        path = tuple(first.path[1:]) if first.path else ()
        problems.append(
            Problem(_locate(doc, path, fallback), format_path(path), first.message, code="schema")
        )
    problems.sort(key=lambda p: (p.location.file, p.location.line, p.location.column))
    return problems


def _locate(doc: Any, path: Path_, fallback: Location, *, key: bool = False) -> Location:
    origin = origin_of(doc, path, key=key)
    return origin.location if origin else fallback


def _explain(doc: Any, error: ValidationError, fallback: Location) -> Iterator[Problem]:
    path: Path_ = tuple(error.absolute_path)
    where = _locate(doc, path, fallback)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    hint = schema.get("x-hint")

    def problem(
        message: str, at: Location = where, at_path: Path_ = path, why: str | None = hint
    ) -> Problem:
        return Problem(at, format_path(at_path), message, why)

    kind = str(error.validator)
    rule: Any = error.validator_value  # the schema keyword's value: a list, a number, ...
    if "propertyNames" in error.schema_path:
        # jsonschema reports a bad key as the instance, at its mapping's path.
        key_path = (*path, str(value))
        at = _locate(doc, key_path, fallback, key=True)
        message = schema.get("x-message", "is not allowed as a key")
        yield problem(f"key {value!r} {message}", at, key_path)
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        for extra in sorted(set(value) - set(allowed)):
            close = difflib.get_close_matches(extra, allowed, n=1)
            why = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
            key_at = _locate(doc, (*path, extra), fallback, key=True)
            yield problem(f"unknown key {extra!r}", key_at, (*path, extra), why)
    elif kind == "required" and isinstance(value, dict):
        for missing in rule:
            if missing not in value:
                yield problem(f"missing required key {missing!r}")
    elif kind in ("minProperties", "maxProperties") and "x-count-message" in schema:
        yield problem(str(schema["x-count-message"]))
    elif (
        kind == "anyOf"
        and _has_branch(error, "object")
        and (isinstance(value, dict) or (isinstance(value, str) and _has_branch(error, "string")))
    ):
        # Text or a mapping may stand here (install: [strace, {from:, path:}]): what is wrong
        # with the value as the kind it is, not "expected text".
        for sub in _branches(error, "object" if isinstance(value, dict) else "string"):
            yield from _explain(doc, sub, fallback)
    elif kind == "type" or (kind == "anyOf" and not isinstance(value, str)):
        expected = rule if kind == "type" else "string"
        yield _type_problem(doc, path, value, expected, where)
    elif kind == "enum":
        options = [str(o) for o in rule]
        close = difflib.get_close_matches(str(value), options, n=1)
        yield problem(
            f"{value!r} is not one of: {', '.join(options)}",
            why=f"did you mean {close[0]!r}?" if close else None,
        )
    elif kind == "minItems":
        count = rule
        yield problem(f"needs at least {count} item{'s' if count != 1 else ''}")
    elif "x-message" in schema:
        yield problem(f"{value!r} {schema['x-message']}")
    else:
        yield problem(error.message)


def _has_branch(error: ValidationError, kind: str) -> bool:
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    return any(isinstance(b, dict) and b.get("type") == kind for b in branches)


def _branches(error: ValidationError, kind: str) -> list[ValidationError]:
    """The errors of an anyOf's branches of one `type` (their own type error aside)."""
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    wanted = {i for i, b in enumerate(branches) if isinstance(b, dict) and b.get("type") == kind}
    return [
        sub
        for sub in error.context or ()
        if sub.schema_path and sub.schema_path[0] in wanted and sub.validator != "type"
    ]


def _type_problem(
    doc: Any, path: Path_, value: object, expected: object, where: Location
) -> Problem:
    names = expected if isinstance(expected, list) else [expected]
    want = " or ".join(_TAG_NAMES.get(str(n), _TYPE_WORDS.get(str(n), str(n))) for n in names)
    origin: Origin | None = origin_of(doc, path)
    if (
        origin is not None
        and origin.plain
        and origin.raw is not None
        and "string" in names
        and origin.tag in _TAG_NAMES
    ):
        read_as = _TAG_NAMES[origin.tag]
        shown = json.dumps(value, default=str) if origin.tag != "tag:yaml.org,2002:null" else ""
        return Problem(
            where,
            format_path(path),
            f"{origin.raw!r} was read as {read_as} {shown}".rstrip() + f", but {want} is expected",
            f'quote it to keep it as written: "{origin.raw}"',
        )
    return Problem(where, format_path(path), f"expected {want}, got {_describe(value)}")
