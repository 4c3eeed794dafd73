"""`nestcustom plan`: which steps of a build re-run, against an image built in the universe."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitops.helpers import build, commit_all, nestcustom

pytestmark = pytest.mark.universe


@pytest.fixture
def built(tmp_path: Path, gitops_base: str, rpm_repo_url: str) -> Iterator[tuple[Path, str]]:
    """(project, tag) of a committed recipe built into local storage."""
    tag = f"localhost/nctest/plan-{uuid.uuid4().hex[:10]}:latest"
    project = tmp_path / "images"
    (project / "recipes").mkdir(parents=True)
    (project / "files").mkdir()
    (project / "files" / "motd").write_text("planned\n")
    base = gitops_base
    (project / "recipes" / "planned.yaml").write_text(
        "name: planned\n"
        "description: plan test\n"
        f'base: {{image: "{base}"}}\n'
        f'repos:\n  - {{id: nctest, baseurl: "{rpm_repo_url}", gpgcheck: false}}\n'
        "layers:\n  - {name: hello, install: [nc-hello]}\n"
        "files:\n  - {src: files/motd, dest: /etc/motd, mode: '0644'}\n"
    )
    commit_all(project, "planned")
    done = build("recipes/planned.yaml", "--tag", tag, cwd=project)
    assert done.returncode == 0, done.stderr
    yield project, tag
    subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)


def test_plan_of_an_unchanged_recipe_is_up_to_date(built: tuple[Path, str]) -> None:
    project, tag = built
    result = nestcustom("plan", "recipes/planned.yaml", "--against", tag, cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"planned: up to date: {tag} was built from these inputs; `build` builds nothing\n"
    )


def test_plan_names_the_steps_a_changed_file_re_runs_and_why(built: tuple[Path, str]) -> None:
    project, tag = built
    (project / "files" / "motd").write_text("changed\n")
    commit_all(project, "motd")
    result = nestcustom("plan", "recipes/planned.yaml", "--against", tag, cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    marks = {line.split()[2]: line.split()[1] for line in lines[:-1]}
    assert marks["base"] == marks["repos"] == "cached", result.stdout
    assert marks["layer"] == "cached", result.stdout  # layer hello
    assert any(
        "re-run" in line and "files: content of files/motd changed" in line for line in lines
    ), result.stdout
    assert any(
        "re-run" in line and "checks: after files, which re-runs" in line for line in lines
    ), result.stdout
    assert lines[-1].endswith("step(s) re-run")
    assert "note:" not in result.stderr, result.stderr


def test_plan_against_an_image_that_does_not_exist_re_runs_everything(
    built: tuple[Path, str],
) -> None:
    project, tag = built
    missing = tag.replace(":latest", ":never")
    result = nestcustom("plan", "recipes/planned.yaml", "--against", missing, cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all("re-run" in line for line in lines[:-1])
    total = len(lines) - 1
    assert lines[-1] == f"{total} of {total} step(s) re-run"
    assert f"{missing} does not exist" in result.stderr


def test_plan_after_the_base_tag_moved_re_runs_from_the_base(
    tmp_path: Path, gitops_base: str, rpm_repo_url: str
) -> None:
    """The base's tag now names an image with the same layers but another label."""
    suffix = uuid.uuid4().hex[:10]
    base = f"localhost/nctest/plan-base-{suffix}:22.03-LTS-SP2.20230922.0-x86_64"
    tag = f"localhost/nctest/plan-{suffix}:latest"

    def base_labelled(value: str) -> None:
        context = tmp_path / f"base-{value}"
        context.mkdir()
        (context / "Containerfile").write_text(f"FROM {gitops_base}\nLABEL plan.test={value}\n")
        done = subprocess.run(
            ["podman", "build", "-q", "-t", base, str(context)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr

    project = tmp_path / "images"
    (project / "recipes").mkdir(parents=True)
    (project / "recipes" / "moved.yaml").write_text(
        "name: moved\n"
        "description: plan test\n"
        f'base: {{image: "{base}"}}\n'
        f'repos:\n  - {{id: nctest, baseurl: "{rpm_repo_url}", gpgcheck: false}}\n'
        "layers:\n  - {name: hello, install: [nc-hello]}\n"
    )
    commit_all(project, "moved")
    try:
        base_labelled("one")
        done = build("recipes/moved.yaml", "--tag", tag, cwd=project)
        assert done.returncode == 0, done.stderr
        base_labelled("two")
        result = nestcustom("plan", "recipes/moved.yaml", "--against", tag, cwd=project)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "  1 re-run  base: the base image changed"
        assert lines[1] == "  2 re-run  repos: after base, which re-runs"
        assert all(" re-run " in line for line in lines[:-1])
    finally:
        subprocess.run(["podman", "rmi", "-f", tag, base], capture_output=True, check=False)
