"""`nestcustom matrix --changed-since REV`: every recipe a change touches, and never an empty
matrix by mistake. Building too much is safe; building too little publishes a stale image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitops.helpers import commit_all, git, nestcustom

BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"
TREE = f"""\
name: tree
base: {{image: "{BASE}"}}
files:
  - {{src: files/tree, dest: /usr/lib/agent}}
"""
NESTED = f"""\
name: nested
base: {{image: "{BASE}"}}
include: [common/outer.yaml]
layers:
  - {{name: tools, install: [jq]}}
"""
PLAIN = f"""\
name: plain
base: {{image: "{BASE}"}}
layers:
  - {{name: tools, install: [tmux]}}
"""


def make_project(root: Path, with_git: bool = True) -> Path:
    (root / "recipes" / "common").mkdir(parents=True)
    (root / "files" / "tree" / "conf.d").mkdir(parents=True)
    (root / "files" / "tree" / "agent.conf").write_text("level=1\n")
    (root / "files" / "tree" / "conf.d" / "10-site.conf").write_text("site=a\n")
    (root / "recipes" / "tree.yaml").write_text(TREE)
    (root / "recipes" / "nested.yaml").write_text(NESTED)
    (root / "recipes" / "common" / "outer.yaml").write_text("include: [inner.yaml]\n")
    (root / "recipes" / "common" / "inner.yaml").write_text("labels: {org.example.team: a}\n")
    (root / "recipes" / "plain.yaml").write_text(PLAIN)
    if with_git:
        git(root, "init", "-q", "-b", "main")
        commit_all(root, "start")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "images")


def matrix(project: Path, *args: str) -> dict[str, list[str]]:
    result = nestcustom("matrix", *args, cwd=project)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    return {entry["name"]: entry["reasons"] for entry in document["include"]}


def test_a_file_inside_a_copied_directory_selects_its_recipe(project: Path) -> None:
    start = git(project, "rev-parse", "HEAD").strip()
    assert matrix(project, "--changed-since", start) == {}
    (project / "files" / "tree" / "conf.d" / "10-site.conf").write_text("site=b\n")
    assert matrix(project, "--changed-since", start) == {
        "tree": ["file files/tree/ changed: files/tree/conf.d/10-site.conf"]
    }
    commit_all(project, "site b")
    (project / "files" / "tree" / "new.conf").write_text("new\n")  # a new, untracked file
    reasons = matrix(project, "--changed-since", start)
    assert list(reasons) == ["tree"]
    assert "and 1 more" in reasons["tree"][0]
    # the GitLab dotenv the generated pipeline reads is not empty either
    gitlab = nestcustom("matrix", "--changed-since", start, "--format", "gitlab", cwd=project)
    assert "NESTCUSTOM_NAMES=tree\nNESTCUSTOM_COUNT=1\n" in gitlab.stdout


def test_a_file_removed_from_a_copied_directory_selects_its_recipe(project: Path) -> None:
    (project / "files" / "tree" / "agent.conf").unlink()
    assert list(matrix(project, "--changed-since", "HEAD")) == ["tree"]


def test_a_fragment_included_by_a_fragment_selects_its_recipe(project: Path) -> None:
    (project / "recipes" / "common" / "inner.yaml").write_text("labels: {org.example.team: b}\n")
    assert matrix(project, "--changed-since", "HEAD") == {
        "nested": ["include recipes/common/inner.yaml changed"]
    }


def test_the_change_is_counted_from_the_merge_base_not_the_tip_of_the_ref(project: Path) -> None:
    """A branch compared with main sees its own changes only, not what main did since."""
    git(project, "checkout", "-q", "-b", "feature")
    plain = project / "recipes" / "plain.yaml"
    plain.write_text(plain.read_text().replace("tmux", "htop"))
    commit_all(project, "feature: plain")
    git(project, "checkout", "-q", "main")
    (project / "recipes" / "common" / "inner.yaml").write_text("labels: {org.example.team: c}\n")
    commit_all(project, "main: inner")
    git(project, "checkout", "-q", "feature")
    # Against main's tip, `nested` would look changed (the branch lacks main's commit).
    assert list(matrix(project, "--changed-since", "main")) == ["plain"]


def test_outside_git_every_recipe_is_built_and_the_output_says_why(tmp_path: Path) -> None:
    project = make_project(tmp_path / "plain-dir", with_git=False)
    result = nestcustom("matrix", "--changed-since", "HEAD", cwd=project)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [e["name"] for e in document["include"]] == ["nested", "plain", "tree"]
    assert "not a git repository" in document["note"]
    assert "every recipe is in the matrix" in result.stderr
    for entry in document["include"]:
        assert entry["reasons"][0].startswith("every recipe:")


def test_a_ref_git_cannot_read_selects_every_recipe(project: Path) -> None:
    result = nestcustom(
        "matrix", "--changed-since", "origin/gone", "--format", "github", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("count=3\n")
    assert "'origin/gone' is not a revision" in result.stderr
