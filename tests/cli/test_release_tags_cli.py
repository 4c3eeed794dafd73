"""`build --push --release-tags`: the version and commit tags set beside the pushed tag,
on the pushed digest, and what the run says of them (a real registry and git)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.cli.images import _add_release_tags
from nestcustom.image.build import Built, Outcome
from tests.fleet.test_promote_registry import push, serving
from tests.gitops.helpers import git
from tests.gitops.test_registry_fast import RECIPE, project
from tests.universe.registry import Registry, run_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def built(reference: str, digest: str | None) -> Outcome:
    return Outcome("web", Built("web", reference, "f" * 64, digest, 0, 1, (), (), (), 1.0))


def test_each_pushed_image_gets_its_tags_said_on_stderr(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, root = project(tmp_path)
    commit = git(root, "rev-parse", "HEAD").strip()
    digest = push(registry, tmp_path, "cli/tags", "latest")
    reference = f"{registry.host}/cli/tags:latest"
    added = _add_release_tags(
        [built(reference, digest), built(reference, None)], [recipe, recipe], root, False
    )
    (version, sha) = added["web"]
    assert version.startswith(f"{registry.host}/cli/tags:22.03-LTS-SP2.") and version.endswith(".0")
    assert sha == f"{registry.host}/cli/tags:sha-{commit[:12]}"
    assert [serving(r) for r in (version, sha)] == [digest, digest]
    assert capsys.readouterr().err.splitlines() == [
        f"web: tagged {version} ({digest[:19]})",
        f"web: tagged {sha} ({digest[:19]})",
    ]


def test_a_dirty_tree_gets_no_commit_tag_and_is_told(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, root = project(tmp_path)
    (root / "recipes" / "web.yaml").write_text(RECIPE + "# changed\n")
    digest = push(registry, tmp_path, "cli/dirty", "latest")
    added = _add_release_tags(
        [built(f"{registry.host}/cli/dirty:latest", digest)], [recipe], root, False
    )
    assert len(added["web"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "web: no sha- tag: the work tree has uncommitted changes"
    )
