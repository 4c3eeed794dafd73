"""Nothing to build when nothing changed; shared first steps built once with --jobs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.universe import (
    image_id,
    labels_of,
    nestcustom,
    own_base,
    podman,
    project,
    tag,
    write_recipe,
)

pytestmark = pytest.mark.universe
__all__ = ["own_base", "project", "tag"]


def test_an_unchanged_recipe_is_not_built_again(
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
    first = nestcustom("build", "recipes/same.yaml", "--tag", tag, cwd=project)
    assert first.returncode == 0, first.stderr
    built = image_id(tag)
    again = nestcustom("build", "recipes/same.yaml", "--tag", tag, "--json", cwd=project)
    assert again.returncode == 0, again.stderr
    assert "STEP" not in again.stderr  # podman was not asked to build at all
    assert f"same: up to date: {tag} ({built[:12]}) locally" in again.stderr
    [summary] = json.loads(again.stdout)["images"]
    assert (summary["image_id"], summary["up_to_date"]) == (built, "local")
    (project / "files" / "motd").write_text("changed\n")
    changed = nestcustom("build", "recipes/same.yaml", "--tag", tag, cwd=project)
    assert changed.returncode == 0, changed.stderr
    assert "STEP" in changed.stderr
    assert image_id(tag) != built


def _build(project: Path, tag: str, *extra: str) -> dict[str, object]:
    result = nestcustom("build", "recipes/r.yaml", "--tag", tag, "--json", *extra, cwd=project)
    assert result.returncode == 0, result.stderr
    [summary] = json.loads(result.stdout)["images"]
    return dict(summary)


def test_a_new_base_under_the_same_tag_is_built_on(
    project: Path, rpm_repo_url: str, own_base: tuple[str, str], tag: str, tmp_path: Path
) -> None:
    base, _ = own_base
    write_recipe(project, "r", base, rpm_repo_url, "  - {name: hello, install: [nc-hello]}\n")
    first = _build(project, tag)
    assert _build(project, tag)["up_to_date"] == "local"
    # The base is rebuilt under its tag (a new release of the same stream): same recipe,
    # same files, another base image ID.
    context = tmp_path / "new-base"
    context.mkdir()
    (context / "Containerfile").write_text(
        f"FROM {base}\nLABEL org.nestcustom.test.unique={uuid.uuid4().hex}\n"
    )
    assert podman("build", "-q", "-t", base, str(context)).returncode == 0
    again = _build(project, tag)
    assert again["up_to_date"] is None  # podman built it
    assert again["image_id"] != first["image_id"]
    # The image is built on the new base: it inherits the new base's labels.
    assert (
        labels_of(tag)["org.nestcustom.test.unique"]
        == labels_of(base)["org.nestcustom.test.unique"]
    )


def test_no_cache_rebuilds_an_up_to_date_image_to_the_same_id(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project, "r", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    first = _build(project, tag)
    assert _build(project, tag)["up_to_date"] == "local"
    again = _build(project, tag, "--no-cache")
    assert again["up_to_date"] is None
    steps = again["steps"]
    assert isinstance(steps, list) and steps
    assert [s["name"] for s in steps if s["cached"] and s["name"] != "base"] == []
    assert again["image_id"] == first["image_id"]  # every step ran again, to the same bytes


def test_a_file_made_executable_is_built_again(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    tree = project / "files" / "tool"
    tree.mkdir()
    (tree / "run.sh").write_text("#!/bin/sh\necho run\n")
    (tree / "run.sh").chmod(0o644)
    write_recipe(
        project,
        "r",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: a, install: [nc-hello]}\n",
        "files:\n  - {src: files/tool, dest: /usr/lib/nctest-tool}\n",
    )
    first = _build(project, tag)
    (tree / "run.sh").chmod(0o755)  # only the mode changes
    again = _build(project, tag)
    assert again["up_to_date"] is None
    assert again["image_id"] != first["image_id"]
    done = podman("run", "--rm", tag, "test", "-x", "/usr/lib/nctest-tool/run.sh")
    assert done.returncode == 0, "the rebuilt image's file is not executable"


@pytest.fixture
def cold_base(nestos_sp2_image: str, rpm_repo_url: str, tmp_path: Path) -> Iterator[str]:
    """A base with the test repo configured, new to podman's cache: every layer on it is cold."""
    reference = f"localhost/nctest/cold-{uuid.uuid4().hex[:10]}:1"
    context = tmp_path / "cold-base"
    context.mkdir()
    (context / "nctest.repo").write_text(
        f"[nctest]\nname=nctest\nbaseurl={rpm_repo_url}\nenabled=1\ngpgcheck=0\n"
    )
    (context / "Containerfile").write_text(
        f"FROM {nestos_sp2_image}\nCOPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
        f"LABEL org.nestcustom.test.unique={uuid.uuid4().hex}\n"
    )
    done = podman("build", "-q", "-t", reference, str(context))
    assert done.returncode == 0, done.stderr
    yield reference
    podman("rmi", "-f", reference)


def test_jobs_build_shared_first_layers_once(project: Path, cold_base: str) -> None:
    shared = "  - {name: one, install: [nc-libgreet]}\n  - {name: two, install: [nc-hello]}\n"
    own = {"a": "strace", "b": "nc-scriptlet", "c": "nc-sysuser"}
    for name, package in own.items():
        (project / "recipes" / f"{name}.yaml").write_text(
            f'name: {name}\nbase: {{image: "{cold_base}"}}\nlayers:\n{shared}'
            f"  - {{name: own, install: [{package}]}}\n"
        )
    template = f"localhost/nctest/jobs-{uuid.uuid4().hex[:8]}-{{name}}:latest"
    try:
        result = nestcustom(
            "build",
            *(f"recipes/{n}.yaml" for n in own),
            "--jobs",
            "3",
            "--tag",
            template,
            "--json",
            cwd=project,
        )
        assert result.returncode == 0, result.stderr
        layers = {}
        for name in own:
            out = podman(
                "image",
                "inspect",
                template.format(name=name),
                "--format",
                "{{json .RootFS.Layers}}",
            )
            layers[name] = json.loads(out.stdout)
        base_layers = len(
            json.loads(
                podman("image", "inspect", cold_base, "--format", "{{json .RootFS.Layers}}").stdout
            )
        )
        # Each image: the base's layers, the two shared ones, its own, the check step's.
        assert all(len(found) == base_layers + 4 for found in layers.values())
        # The base's and the two shared layers are one and the same in all three images.
        prefixes = {tuple(found[: base_layers + 2]) for found in layers.values()}
        assert len(prefixes) == 1, "the shared layers were stored more than once"
        assert len({found[base_layers + 2] for found in layers.values()}) == 3  # each its own
        summary = json.loads(result.stdout)["images"]
        ran = [
            step["name"]
            for item in summary
            for step in item["steps"]
            if step["name"] in ("layer one", "layer two") and not step["cached"]
        ]
        assert sorted(ran) == ["layer one", "layer two"]  # built by one recipe, cached for two
    finally:
        for name in own:
            podman("rmi", "-f", template.format(name=name))
