"""What git says about a project for the image's labels (nestcustom/git.py): the commit,
whether the tree is dirty, the commit's time, and the remote without credentials."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from nestcustom.git import _without_credentials, iso_time, provenance

EPOCH = 1704888000  # 2024-01-10T12:00:00Z


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_COMMITTER_DATE": f"{EPOCH} +0800",
        "GIT_AUTHOR_DATE": "1600000000 +0000",
    }
    argv = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args]
    return subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "r.yaml").write_text("x\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_a_clean_checkout(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert provenance(repo) == {
        "revision": commit,
        "epoch": str(EPOCH),
        "committed": "2024-01-10T12:00:00Z",
    }


def test_a_dirty_tree_is_said_by_the_revision_not_the_time(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD").strip()
    (repo / "new.yaml").write_text("y\n")  # untracked counts
    facts = provenance(repo)
    assert facts["revision"] == f"{commit}-dirty"
    assert (facts["epoch"], facts["committed"]) == (str(EPOCH), "2024-01-10T12:00:00Z")


def test_the_remote_is_the_source_without_credentials(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://ci:glpat-secret@git.example.com/org/images.git")
    git(repo, "remote", "add", "mirror", "https://other.example.com/x.git")
    assert provenance(repo)["source"] == "https://git.example.com/org/images.git"


def test_no_remote_no_source(repo: Path) -> None:
    git(repo, "remote", "add", "mirror", "https://other.example.com/x.git")
    assert "source" not in provenance(repo)


def test_no_commits_or_no_git_no_labels(tmp_path: Path) -> None:
    assert provenance(tmp_path) == {}  # not a repository
    git(tmp_path, "init", "-q")
    assert provenance(tmp_path) == {}  # a repository without commits


def test_the_time_is_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert iso_time(EPOCH) == "2024-01-10T12:00:00Z"
        assert iso_time(0) == "1970-01-01T00:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:token@git.example.com/org/repo.git", "https://git.example.com/org/repo.git"),
        ("ssh://git@git.example.com:2222/org/repo.git", "ssh://git.example.com:2222/org/repo.git"),
        ("https://a@b@git.example.com/r", "https://b@git.example.com/r"),
        (
            "https://git.example.com/org/user@team/repo",
            "https://git.example.com/org/user@team/repo",
        ),
        ("https://git.example.com/a://b@c", "https://git.example.com/a://b@c"),
        ("https://u@h", "https://h"),
        ("git@example.com:org/repo.git", "git@example.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)
def test_credentials_are_never_shown(url: str, shown: str) -> None:
    assert _without_credentials(url) == shown
