"""A recipe that is not YAML, or names files that are not there: each problem where it
is, what is wrong, a hint where one helps, and its code (as `validate --json` gives it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE

HEAD = f"name: a\nbase: {{image: {BASE}}}\n"


@pytest.mark.parametrize(
    ("text", "where", "message", "hint"),
    [
        (HEAD + "---\nname: b\n", (3, 1),
         "expected a single document in the stream: but found another document",
         "a recipe is one YAML document: remove the extra '---'"),
        (f"name: a\nbase:\n\timage: {BASE}\n", (3, 1),
         "a tab character where YAML expects spaces", "YAML indentation must use spaces, not tabs"),
        ("\tname: a\n", (1, 1),
         "a tab character where YAML expects spaces", "YAML indentation must use spaces, not tabs"),
        (HEAD + "layers:\n  - name: l\n\t", (5, 1),
         "a tab character where YAML expects spaces", "YAML indentation must use spaces, not tabs"),
        (f"name: a\nbase: {{image: {BASE}\nlayers: []\n", (3, 7),
         "while parsing a flow mapping: did not find expected ',' or '}'", None),
        ("name: a: b\n", (1, 8), "mapping values are not allowed in this context", None),
    ],
)  # fmt: skip
def test_yaml_that_does_not_parse(
    tmp_path: Path, text: str, where: tuple[int, int], message: str, hint: str | None
) -> None:
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "r.yaml", tmp_path)
    [problem] = caught.value.problems
    assert (problem.location.line, problem.location.column) == where
    assert (problem.path, problem.message, problem.hint, problem.code) == (
        "",
        f"not valid YAML: {message}",
        hint,
        "yaml",
    )


def test_a_missing_include_and_a_missing_file_are_coded(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        f"include: [missing.yaml]\n{HEAD}files: [{{src: files/none, dest: /etc/x}}]\n"
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "r.yaml", tmp_path)
    found = [(p.path, p.message, p.hint, p.code) for p in caught.value.problems]
    assert ("include[0]", "included file 'missing.yaml' does not exist", None, "include") in found
    (tmp_path / "r.yaml").write_text(f"{HEAD}files: [{{src: files/none, dest: /etc/x}}]\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "r.yaml", tmp_path)
    [problem] = caught.value.problems
    assert (problem.path, problem.message, problem.hint, problem.code) == (
        "files[0].src",
        "'files/none' is not a file",
        f"looked for {tmp_path / 'files/none'}",
        "file",
    )
