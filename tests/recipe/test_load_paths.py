"""Where a recipe path leads: the same answer as Path.resolve, through symlinks too."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.recipe.load import _relative_posix, _resolve_file, load_recipe


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "project" / "recipes").mkdir(parents=True)
    (tmp_path / "project" / "recipes" / "r.yaml").write_text("name: r\n")
    links = tmp_path / "links"
    links.mkdir()
    (links / "dir").symlink_to(tmp_path / "project" / "recipes")
    (links / "file.yaml").symlink_to(tmp_path / "project" / "recipes" / "r.yaml")
    (links / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (links / "to-dir.yaml").symlink_to(tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    return tmp_path


CASES = [
    "recipes/r.yaml",
    "recipes/./r.yaml",
    "recipes/missing.yaml",
    "recipes",
    ".",
    "../links/dir/r.yaml",  # `..`, then a symlinked directory
    "{root}/links/dir/r.yaml",
    "{root}/links/dir/../project/recipes/r.yaml",  # `..` after a symlink is not lexical
    "{root}/links/file.yaml",
    "{root}/links/dangling.yaml",
    "{root}/links/to-dir.yaml",
]


@pytest.mark.parametrize("case", CASES)
def test_a_recipe_path_resolves_as_path_resolve_does(tree: Path, case: str) -> None:
    path = Path(case.format(root=tree))
    expected = path.resolve()
    assert _resolve_file(path) == (expected, expected.is_file())


def test_the_file_itself_is_looked_at_anew_each_time(tree: Path) -> None:
    """Only directories' real paths are kept for the run, never what the file is."""
    recipe = tree / "project" / "recipes" / "r.yaml"
    assert _resolve_file(recipe) == (recipe, True)
    recipe.unlink()
    assert _resolve_file(recipe) == (recipe, False)
    recipe.symlink_to(tree / "links" / "dangling.yaml")
    assert _resolve_file(recipe) == (tree / "nowhere.yaml", False)


def test_a_recipe_that_is_a_symlink_loop_is_a_clear_error(tree: Path) -> None:
    """Path.resolve raised RuntimeError on a loop: an internal error, not a message."""
    loop = tree / "project" / "recipes" / "loop.yaml"
    loop.symlink_to(loop)
    with pytest.raises(BadInputError, match="no such recipe file"):
        load_recipe(loop)


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/p/recipes/r.yaml", "/p"),
        ("/p/recipes/r.yaml", "/"),
        ("/p/recipes", "/p/recipes"),
        ("/pp/recipes/r.yaml", "/p"),  # a sibling sharing the prefix is outside
        ("/other/r.yaml", "/p"),
    ],
)
def test_a_recipe_is_named_relative_to_the_project_as_pathlib_would(path: str, root: str) -> None:
    expected = Path(path).relative_to(root).as_posix() if Path(path).is_relative_to(root) else None
    assert _relative_posix(path, root) == expected
