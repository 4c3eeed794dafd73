"""An image's .repo file that is not UTF-8 (a Latin-1 comment, as older distributions'
files and hand edits have): its repositories are still the ones advisories read, fast:
overlay-shaped layer directories made here, podman's answer given in its shape as
test_advisories_fast.py gives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.gitops import imagedb
from nestcustom.gitops.advisories import image_repos


def test_a_latin1_comment_in_a_repo_file_does_not_hide_its_repositories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos = tmp_path / "upper" / "etc" / "yum.repos.d"
    repos.mkdir(parents=True)
    (repos / "base.repo").write_bytes(
        "# Dépôt de l'équipe\n[base]\nbaseurl=https://mirror.example.com/base/$basearch/\n".encode(
            "latin-1"
        )
    )
    (repos / "updates.repo").write_text("[updates]\nbaseurl=https://mirror.example.com/updates/\n")

    def inspect(reference: str) -> dict[str, object]:
        return {"GraphDriver": {"Name": "overlay", "Data": {"UpperDir": str(tmp_path / "upper")}}}

    monkeypatch.setattr(imagedb, "_inspect", inspect)
    assert image_repos("containers-storage:localhost/web:1") == [
        "https://mirror.example.com/base/x86_64/",
        "https://mirror.example.com/updates/",
    ]
