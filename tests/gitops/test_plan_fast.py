"""`plan`'s look into the past, fast: the inputs of the build that made an image, rebuilt
from the commit its revision label names, in a git repository made here.

The image's facts (labels, layers, history) are given as `podman image inspect` would
report them: that is what plan reads of an image, and no image needs to exist for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.gitops import plan
from nestcustom.gitops.imagefacts import ImageFacts
from nestcustom.gitops.plan import NO_PROVENANCE, _checkout, _inputs_at_build
from nestcustom.gitops.stepkeys import StepKey, step_keys
from nestcustom.image.inputs import INPUTS_LABEL, REVISION, image_inputs
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Recipe
from tests.gitops.helpers import commit_all, git

BASE = "hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP2.20230922.0-x86_64"
BASE_ID = "b" * 64
IDS = {BASE: BASE_ID}
RECIPE = f"""\
name: web
description: web
base: {{image: "{BASE}"}}
files:
  - {{src: files/motd, dest: /etc/motd}}
layers: [{{name: tools, install: [strace]}}]
"""
BASE_LAYERS = ("sha256:" + "1" * 64, "sha256:" + "2" * 64)
BASE_HISTORY = ("ADD rootfs /", "LABEL version=1")


def recipe_at(project: Path) -> Recipe:
    return load_recipe(project / "recipes" / "web.yaml", project).recipe


def keys_now(project: Path, ids: dict[str, str]) -> tuple[list[StepKey], str]:
    inputs = image_inputs(recipe_at(project), project, ids, NO_PROVENANCE)
    return step_keys(inputs, ids), inputs.digest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "site"  # a project in a subdirectory of its repository
    (root / "recipes").mkdir(parents=True)
    (root / "files").mkdir()
    (root / "recipes" / "web.yaml").write_text(RECIPE)
    (root / "files" / "motd").write_text("welcome, version one\n")
    (tmp_path / "repo" / "README").write_text("outside the project\n")
    commit_all(tmp_path / "repo", "one")
    return root


def image(
    labels: dict[str, str], base_match: bool = True, history: tuple[str, ...] = BASE_HISTORY
) -> ImageFacts:
    layers = (*BASE_LAYERS, "sha256:" + "3" * 64) if base_match else ("sha256:" + "9" * 64,)
    return ImageFacts("registry.example.com/web:1", "e" * 64, labels, layers, "registry",
                      (*history, "RUN rpm-ostree install strace"))  # fmt: skip


@pytest.fixture
def base_facts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The base as podman would report it; the references asked for."""
    asked: list[str] = []

    def facts(reference: str, tls_verify: bool = True) -> ImageFacts | None:
        asked.append(reference)
        if reference != BASE:
            return None
        return ImageFacts(reference, BASE_ID, {}, BASE_LAYERS, "local", BASE_HISTORY)

    monkeypatch.setattr(plan, "image_facts", facts)
    return asked


def test_the_inputs_at_the_images_commit(project: Path, base_facts: list[str]) -> None:
    before, digest = keys_now(project, IDS)
    commit = git(project, "rev-parse", "HEAD").strip()
    (project / "files" / "motd").write_text("welcome, version two\n")
    commit_all(project.parent, "two")
    after, _ = keys_now(project, IDS)
    assert before != after
    labels = {REVISION: commit, INPUTS_LABEL: digest}
    assert _inputs_at_build(recipe_at(project), project, image(labels), IDS, True) == (before, "")
    assert base_facts == [BASE]


def test_inputs_that_do_not_rebuild_the_images_digest_say_so(
    project: Path, base_facts: list[str]
) -> None:
    before, digest = keys_now(project, IDS)
    commit = git(project, "rev-parse", "HEAD").strip()
    note = (
        f"the inputs rebuilt from {commit[:19]} do not match the image's digest "
        "(a dirty tree, another nestcustom version or another base): steps marked "
        "cached may re-run"
    )
    dirty = {REVISION: commit + "-dirty", INPUTS_LABEL: "sha256:" + "0" * 64}
    keys, said = _inputs_at_build(recipe_at(project), project, image(dirty), IDS, True)
    assert (keys, said) == (before, note)  # the -dirty commit's files: the committed ones
    # a base whose layers do not begin the image's: its ID is unknown, and so is the digest
    labels = {REVISION: commit, INPUTS_LABEL: digest}
    keys, said = _inputs_at_build(recipe_at(project), project, image(labels, False), IDS, True)
    assert keys == keys_now(project, {BASE: "unknown"})[0] != before
    assert said.startswith(f"the inputs rebuilt from {commit[:19]} do not match")
    # the same layers under another history (the base's tag now names a relabelled image)
    relabelled = image(labels, history=("ADD rootfs /", "LABEL version=2"))
    keys, said = _inputs_at_build(recipe_at(project), project, relabelled, IDS, True)
    assert keys == keys_now(project, {BASE: "unknown"})[0]


def test_what_the_images_revision_cannot_give(project: Path, base_facts: list[str]) -> None:
    recipe = recipe_at(project)
    assert _inputs_at_build(recipe, project, image({}), IDS, True) == (
        None,
        "registry.example.com/web:1 has no org.opencontainers.image.revision label: "
        "its inputs are unknown",
    )
    assert _inputs_at_build(recipe, project, image({REVISION: "ab" * 20}), IDS, True) == (
        None,
        "commit abababababab (the image's revision) is not in this repository",
    )
    (project / "recipes" / "web.yaml").write_text("name: [broken\n")
    commit_all(project.parent, "broken")
    broken = git(project, "rev-parse", "HEAD").strip()
    assert _inputs_at_build(recipe, project, image({REVISION: broken}), IDS, True) == (
        None,
        f"recipes/web.yaml at {broken[:12]} does not load",
    )
    assert base_facts == []  # nothing asked of the base when there is nothing to compare


def test_checkout_of_a_commit(project: Path, tmp_path: Path) -> None:
    first = git(project, "rev-parse", "HEAD").strip()
    (project / "files" / "motd").write_text("changed\n")
    (project / "files" / "new").write_text("new\n")
    commit_all(project.parent, "two")
    into = tmp_path / "old"
    into.mkdir()
    got = _checkout(project, first, into)
    assert got == into / "site"
    assert (got / "files" / "motd").read_text() == "welcome, version one\n"
    assert not (got / "files" / "new").exists()
    assert not (into / "README").exists()  # only the project's part of the repository
    whole = tmp_path / "whole"
    whole.mkdir()
    assert _checkout(project.parent, first, whole) == whole
    assert sorted(p.name for p in whole.iterdir()) == ["README", "site"]
    assert _checkout(project, "0" * 40, tmp_path / "none") is None
    plain = tmp_path / "not-git"
    plain.mkdir()
    assert _checkout(plain, first, tmp_path / "none") is None
