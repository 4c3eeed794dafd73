"""The positioned loader's resolver reads every scalar as PyYAML's safe loader does."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from nestcustom.recipe.source import _Loader, _Named, parse_yaml
from tests.conftest import FIXTURES, ROOT

try:
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]

# The characters YAML 1.1's implicit types are made of, and a few that are not.
SCALAR = st.text(alphabet="0123456789.-+_:eExXoObB~ntrufalsyNTRUFALSYOonf= <ad", max_size=12)
SPECIAL = [
    "", "~", "null", "Null", "NULL", "true", "True", "yes", "No", "on", "OFF", "y", "n",
    "0", "-0", "0o17", "017", "0x1F", "0b101", "1_000", "1:20", "190:20:30", "1.5",
    "1.10", ".5", "1e3", "1.0e+3", "-.inf", ".NaN", "2022.16", "2001-12-14",
    "2001-12-14t21:59:43.10-05:00", "<<", "=", "strace", "strace >= 5.10",
]  # fmt: skip


def _pyyaml(loader: SafeLoader, kind: type[yaml.Node], value: object, implicit: object) -> str:
    tag: str = loader.resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
    return tag


@given(SCALAR)
def test_a_plain_scalar_gets_pyyaml_s_tag(value: str) -> None:
    ours, theirs = _Loader(""), SafeLoader("")
    for implicit in ((True, False), (False, True), (False, False)):
        expected = _pyyaml(theirs, yaml.ScalarNode, value, implicit)
        assert ours.resolve(yaml.ScalarNode, value, implicit) == expected, (value, implicit)


def test_special_scalars_lists_and_mappings_get_pyyaml_s_tags() -> None:
    ours, theirs = _Loader(""), SafeLoader("")
    for value in SPECIAL:
        for implicit in ((True, False), (False, True)):
            expected = _pyyaml(theirs, yaml.ScalarNode, value, implicit)
            assert ours.resolve(yaml.ScalarNode, value, implicit) == expected, value
    for kind in (yaml.SequenceNode, yaml.MappingNode):
        assert ours.resolve(kind, None, (True, False)) == _pyyaml(theirs, kind, None, (True, False))


def _tags(node: yaml.Node) -> list[tuple[str, str]]:
    if isinstance(node, yaml.ScalarNode):
        return [(node.tag, node.value)]
    items = (
        node.value if isinstance(node, yaml.SequenceNode) else [x for kv in node.value for x in kv]
    )
    return [(node.tag, "")] + [tag for item in items for tag in _tags(item)]


def test_every_fixture_and_recipe_composes_to_the_same_tags() -> None:
    paths = [*FIXTURES.rglob("*.yaml"), *(ROOT / "recipes").rglob("*.yaml")]
    assert len(paths) > 40
    compared = 0
    for path in paths:
        text = path.read_text(errors="replace")
        try:
            expected = yaml.compose(text, Loader=SafeLoader)
        except yaml.YAMLError:
            continue
        node = yaml.compose(_Named(text, str(path)), Loader=_Loader)
        assert (node is None) == (expected is None), path
        if node is not None and expected is not None:
            assert _tags(node) == _tags(expected), path
            compared += 1
    assert compared > 40


def test_typed_scalars_are_still_read_as_yaml_reads_them() -> None:
    doc, problems = parse_yaml("a: yes\nb: 1.10\nc: ~\nd: '1.10'\ne: [on, 0x1F, 2001-12-14]\n", "x")
    assert problems == []
    assert doc == yaml.load(
        "a: yes\nb: 1.10\nc: ~\nd: '1.10'\ne: [on, 0x1F, 2001-12-14]\n", Loader=SafeLoader
    )
