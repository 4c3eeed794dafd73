"""The YAML loader's guards and merges, each on its own: nesting past the limit without
many values, many values without nesting, values that are mappings of text, and `<<:`
merges whose explicit keys win (the sample's survivors in recipe/source.py)."""

from __future__ import annotations

from nestcustom.recipe import source
from nestcustom.recipe.source import parse_yaml


def messages(text: str) -> list[str]:
    _, problems = parse_yaml(text, "r.yaml")
    return [p.message for p in problems]


def test_nesting_past_the_limit_is_refused_with_few_values() -> None:
    deep = "a: " + "{b: " * source.MAX_DEPTH + "x" + "}" * source.MAX_DEPTH + "\n"
    assert any("nested more than" in m for m in messages(deep))
    shallow = "a: " + "{b: " * (source.MAX_DEPTH - 2) + "x" + "}" * (source.MAX_DEPTH - 2) + "\n"
    assert messages(shallow) == []


def test_a_mapping_of_text_values_counts_each_value() -> None:
    many = "".join(f"k{i}: v\n" for i in range(source.MAX_NODES + 5))
    assert any(f"more than {source.MAX_NODES} values" in m for m in messages(many))
    few = "".join(f"k{i}: v\n" for i in range(source.MAX_NODES // 2 - 10))
    assert messages(few) == []


def test_merged_keys_fill_in_and_explicit_keys_win() -> None:
    doc, problems = parse_yaml(
        "base: &b {image: x, flavor: nestos}\nother:\n  <<: *b\n  image: y\n", "r.yaml"
    )
    assert problems == []
    assert dict(doc["other"]) == {"image": "y", "flavor": "nestos"}
    assert "<<" not in doc["other"]


def test_a_merge_of_text_is_refused_where_it_is() -> None:
    _, problems = parse_yaml("other:\n  <<: oops\n  image: y\n", "r.yaml")
    assert [(p.message, p.location.line, p.location.column) for p in problems] == [
        ("'<<' must merge a mapping or a list of mappings", 2, 7)
    ]
