"""Same inputs, same image: build after build, and whatever the clock says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image.universe import (
    git_commit,
    image_id,
    labels_of,
    nestcustom,
    podman,
    project,
    tag,
    write_recipe,
)

pytestmark = pytest.mark.universe
__all__ = ["project", "tag"]


def test_unchanged_recipe_builds_the_same_image_ten_times(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project,
        "same",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: hello, install: [nc-hello]}\n",
        "files:\n  - {src: files/motd, dest: /etc/motd}\n",
    )
    git_commit(project)
    ids = []
    for _ in range(10):
        result = nestcustom("build", "recipes/same.yaml", "--tag", tag, cwd=project)
        assert result.returncode == 0, result.stderr
        ids.append(image_id(tag))
        # Untagged, the image stays in the layer cache, and the next run must build
        # (not find its tag) and end on the same image.
        podman("untag", tag)
    assert len(set(ids)) == 1, ids
    podman("tag", ids[0], tag)
    labels = labels_of(tag)
    assert labels["org.opencontainers.image.created"] == "2024-01-10T12:00:00Z"
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/org/images.git"
    assert len(labels["org.opencontainers.image.revision"]) == 40
