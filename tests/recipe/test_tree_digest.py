"""A directory a recipe copies is part of its inputs as a whole tree: what changes in it
(a file's content, its executable bit, a link's target, a new file) changes the recipe's
file digest, so the image is built again; what the copy does not keep (mtimes) does not."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nestcustom.recipe.load import load_recipe

BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"


def tree_digest(project: Path) -> str:
    loaded = load_recipe(project / "recipes" / "r.yaml", project)
    (spec,) = loaded.recipe.files
    assert spec.tree
    return spec.sha256


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text(
        f"name: r\nbase: {{image: {BASE}}}\nfiles: [{{src: files/agent/, dest: /usr/lib/agent}}]\n"
    )
    tree = tmp_path / "files" / "agent"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (tree / "conf").write_text("level=1\n")
    (tree / "current").symlink_to("bin/run")
    return tmp_path


def chmod_x(tree: Path) -> None:
    (tree / "bin" / "run").chmod(0o755)


def edit(tree: Path) -> None:
    (tree / "conf").write_text("level=2\n")


def relink(tree: Path) -> None:
    (tree / "current").unlink()
    (tree / "current").symlink_to("conf")


def add_file(tree: Path) -> None:
    (tree / "bin" / "new").write_text("")


@pytest.mark.parametrize("change", [chmod_x, edit, relink, add_file])
def test_a_change_inside_a_copied_directory_changes_the_digest(
    project: Path, change: Callable[[Path], None]
) -> None:
    before = tree_digest(project)
    change(project / "files" / "agent")
    assert tree_digest(project) != before


def test_the_executable_bit_counts_both_ways_and_mtimes_do_not(project: Path) -> None:
    run = project / "files" / "agent" / "bin" / "run"
    run.chmod(0o644)
    plain = tree_digest(project)
    run.chmod(0o755)
    executable = tree_digest(project)
    run.chmod(0o600)  # the build context carries 0755 or 0644, by the x bit alone
    assert tree_digest(project) == plain != executable
    os.utime(run, (1, 1))
    assert tree_digest(project) == plain
