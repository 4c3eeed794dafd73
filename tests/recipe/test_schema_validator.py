"""The compiled schema validator: what it costs on a valid recipe, and that it agrees with
jsonschema, which words the errors, on every fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastjsonschema import JsonSchemaValueException

from nestcustom.recipe.load import _Context, _load_tree
from nestcustom.recipe.schema import _fast_validator, _full_validator
from nestcustom.recipe.source import parse_yaml
from tests.conftest import BASE, FIXTURES

# Every construct whose branches the validator only tries: a package name and an RPM URL
# (the `not` keeping Bodhi pages out), a COPR repo and a plain one (if/then/else with
# propertyNames), a file, units, labels, tests.
MANY_PACKAGES = ", ".join(f"pkg{i} >= 1.{i}" if i % 5 == 0 else f"pkg{i}" for i in range(60))
VALID = f"""\
name: valid
base: {{image: "{BASE}"}}
repos:
  - {{id: tools, baseurl: "https://repo.example.com/tools/$basearch/"}}
  - {{copr: myteam/agent, chroot: openeuler-22.03}}
layers:
  - name: tools
    install: [{MANY_PACKAGES}, "https://repo.example.com/a-1.0-1.x86_64.rpm"]
    remove: [toolbox]
    replace: [https://repo.example.com/tmux-3.3a-1.x86_64.rpm]
  - name: more
    install: [strace]
files:
  - {{src: files/motd, dest: /etc/motd, mode: "0644"}}
systemd:
  enable: [chronyd.service]
labels:
  com.example.team: ops
tests:
  packages:
    present: [strace]
"""


def test_a_valid_recipe_is_checked_without_wording_a_single_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried branches fail as control flow, and a valid recipe fails one per package: each
    failure used to word its error (`.format(**locals())` in a function of thousands of
    locals), which was most of `nestcustom validate`'s time. None is worded now."""
    validate = _fast_validator()
    worded: list[str] = []

    class Recording(JsonSchemaValueException):
        def __init__(self, message: str, *args: Any, **kwargs: Any) -> None:
            if message:
                worded.append(message)
            super().__init__(message, *args, **kwargs)

    monkeypatch.setitem(validate.__globals__, "JsonSchemaValueException", Recording)
    doc, problems = parse_yaml(VALID, "valid.yaml")
    assert problems == []
    assert list(_full_validator().iter_errors(doc)) == []  # jsonschema: valid
    validate(doc)
    assert worded == []
    # The errors that leave the validator keep their words.
    doc["layers"][0]["install"].append("https://koji.fedoraproject.org/koji/buildinfo?x=1")
    with pytest.raises(Recording, match=r"cannot be validated by any definition"):
        validate(doc)


FIXTURE_FILES = sorted(p for folder in ("pass", "fail") for p in (FIXTURES / folder).glob("*.yaml"))


@pytest.mark.parametrize(
    "path", FIXTURE_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURE_FILES]
)
def test_the_compiled_validator_agrees_with_jsonschema(path: Path) -> None:
    """Valid for one exactly when valid for the other, on every fixture (the ones that fail
    only a NestOS rule are schema-valid): the cheap raises change no verdict."""
    ctx = _Context(FIXTURES)
    doc = _load_tree(ctx, path, ())
    if doc is None:  # not YAML, or not a mapping: the loader says so, the schema never runs
        assert ctx.problems
        return
    try:
        _fast_validator()(doc)
        fast_valid = True
    except JsonSchemaValueException:
        fast_valid = False
    assert fast_valid == (next(_full_validator().iter_errors(doc), None) is None)
