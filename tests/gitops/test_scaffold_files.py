"""What `nestcustom init` writes, read without running git or the pipelines: the schema
editors validate against is the recipe schema itself, and what init says it wrote is what
is on disk (the full init, with git, is tested elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

from nestcustom.gitops.scaffold import SCHEMA, InitOptions, init_repository, scaffold_files
from nestcustom.recipe.schema import recipe_schema


def test_the_schema_file_is_the_recipe_schema() -> None:
    files = scaffold_files(InitOptions())
    assert json.loads(files[SCHEMA]) == recipe_schema()


def test_init_writes_what_it_says_and_the_containerfiles_directory(tmp_path: Path) -> None:
    written = init_repository(tmp_path / "repo", InitOptions())
    assert (tmp_path / "repo" / "containerfiles").is_dir()
    assert SCHEMA in written
    assert (
        sorted(
            str(p.relative_to(tmp_path / "repo"))
            for p in (tmp_path / "repo").rglob("*")
            if p.is_file()
        )
        == written
    )
