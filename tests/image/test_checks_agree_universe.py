"""`nestcustom test` agrees with the build: values filled as the build filled them, files
podman mounts over read from the image itself, and what a recipe's own commands remove
not reported missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.image.universe import nestcustom, podman, project, tag, write_recipe

pytestmark = pytest.mark.universe
__all__ = ["project", "tag"]


def build_and_test(project: Path, name: str, tag: str) -> dict[str, object]:
    built = nestcustom("build", f"recipes/{name}.yaml", "--tag", tag, cwd=project)
    assert built.returncode == 0, built.stderr
    tested = nestcustom("test", f"recipes/{name}.yaml", "--image", tag, "--json", cwd=project)
    document: dict[str, object] = json.loads(tested.stdout)
    assert tested.returncode == (0 if document["ok"] else 1), tested.stderr
    return document


def failures(document: dict[str, object]) -> list[str]:
    results = document["results"]
    assert isinstance(results, list)
    return [f"{r['subject']} {r['expectation']}: {r['detail']}" for r in results if not r["passed"]]


def image_file(reference: str, path: str) -> str:
    mounted = podman("image", "mount", reference)
    assert mounted.returncode == 0, mounted.stderr
    try:
        return (Path(mounted.stdout.strip()) / path.lstrip("/")).read_text()
    finally:
        podman("image", "umount", reference)


def test_a_shipped_etc_hostname_reaches_the_image_and_is_checked_there(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    """podman mounts its own /etc/hostname over the image's in every RUN and container."""
    (project / "files" / "hostname").write_text("edge-gateway\n")
    write_recipe(
        project,
        "named",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: hello, install: [nc-hello]}\n",
        "files:\n  - {src: files/hostname, dest: /etc/hostname}\n",
    )
    document = build_and_test(project, "named", tag)
    assert image_file(tag, "/etc/hostname") == "edge-gateway\n"
    assert failures(document) == []
    results = document["results"]
    assert isinstance(results, list)
    assert any(
        r["subject"] == "/etc/hostname" and r["expectation"].startswith("content sha256")
        for r in results
    )


def test_values_in_package_versions_are_filled_as_the_build_filled_them(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    """The fixture base's %{dist} is empty, so the filled version is 1.0-1 (what the
    repository's nc-hello is); left unfilled, `1.0-1{{dist}}` is no version at all."""
    write_recipe(
        project,
        "versions",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: hello, install: [nc-hello]}\n",
        "tests:\n  packages:\n    present: ['nc-hello = 1.0-1{{dist}}', 'nc-hello >= 1.0{{dist}}']\n",
    )
    document = build_and_test(project, "versions", tag)
    assert failures(document) == []


def test_a_package_the_recipes_own_command_removes_is_not_reported_missing(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project,
        "pruned",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: tools, install: [nc-hello, strace]}\n"
        "  - {name: prune, run: [[rpm, -e, --nodeps, nc-hello]]}\n",
    )
    document = build_and_test(project, "pruned", tag)
    assert failures(document) == []
    results = document["results"]
    assert isinstance(results, list)
    [hello] = [r for r in results if r["subject"] == "nc-hello"]
    assert hello["expectation"] == "installed, unless layer prune's commands removed it"
    [strace] = [r for r in results if r["subject"] == "strace"]
    assert strace["passed"] is True
