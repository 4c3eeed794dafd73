"""nestcustom build against real podman, the fixture NestOS base, real RPMs and a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.image.universe import (
    containers_from,
    image_exists,
    interrupt,
    nestcustom,
    own_base,
    podman,
    project,
    read_until,
    start_nestcustom,
    tag,
    write_recipe,
)
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe


__all__ = ["own_base", "project", "tag"]


def test_build_tags_labels_and_inherits_nestos_labels(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project,
        "strace",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: debug-tools, install: [strace]}\n",
        "files:\n  - {src: files/motd, dest: /etc/motd}\nlabels: {org.example.team: platform}\n",
    )
    result = nestcustom("build", "recipes/strace.yaml", "--tag", tag, cwd=project)
    assert result.returncode == 0, result.stderr
    [step] = [line for line in result.stderr.splitlines() if "STEP 3/6: RUN" in line]
    assert " ".join(step.split()).endswith(
        "build.sh clamp rpm-ostree install strace && rm -rf /var/cache && ostree container commit"
    )
    labels = json.loads(podman("image", "inspect", tag, "--format", "{{json .Labels}}").stdout)
    assert labels["org.opencontainers.image.title"] == "strace"
    assert labels["org.opencontainers.image.description"] == "test image strace"
    assert labels["org.opencontainers.image.base.name"] == nestos_sp2_image
    assert labels["io.nestcustom.recipe.digest"].startswith("sha256:")
    # Not a git checkout and no SOURCE_DATE_EPOCH: no created time rather than the clock's.
    assert "org.opencontainers.image.created" not in labels
    assert labels["io.nestcustom.inputs"].startswith("sha256:")
    assert labels["org.example.team"] == "platform"
    # Inherited from the NestOS base: what rpm-ostree rebase and status rely on.
    assert labels["ostree.bootable"] == "true"
    assert labels["version"] == "22.03-LTS-SP2.20230922.0"
    run = podman("run", "--rm", tag, "sh", "-c", "strace -V | head -1; cat /etc/motd")
    assert run.stdout.startswith("strace -- version 6."), run.stdout
    assert "built by the nestcustom tests" in run.stdout


def test_missing_package_fails_naming_layer_line_and_package(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project,
        "broken",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: good, install: [nc-hello]}\n  - name: bad\n    install: [nc-libgreet, no-such-package]\n",
    )
    result = nestcustom("build", "recipes/broken.yaml", "--tag", tag, cwd=project)
    assert result.returncode == 1
    assert (
        "error: broken: layer bad (recipes/broken.yaml:8:5) failed at step 4/6: "
        "rpm-ostree: Packages not found: no-such-package"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert not image_exists(tag)


def test_var_content_fails_the_commit_on_sp2(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project,
        "varwriter",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: state, install: [nc-varwriter]}\n",
    )
    result = nestcustom("build", "recipes/varwriter.yaml", "--tag", tag, cwd=project)
    assert result.returncode == 1
    assert (
        "layer state (recipes/varwriter.yaml:7:5) failed at step 3/5: ostree container commit: Found content in var"
        in result.stderr
    )
    assert "hint: a package wrote to /var" in result.stderr
    assert not image_exists(tag)


def test_push_prints_the_digest_the_registry_serves(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, registry: Registry
) -> None:
    write_recipe(
        project,
        "pushed",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: hello, install: [nc-hello]}\n",
    )
    reference = f"{registry.host}/custom/pushed:v1"
    try:
        result = nestcustom(
            "build",
            "recipes/pushed.yaml",
            "--tag",
            reference,
            "--push",
            "--no-tls-verify",
            cwd=project,
        )
        assert result.returncode == 0, result.stderr
        pinned = result.stdout.strip()
        assert pinned.startswith(f"{registry.host}/custom/pushed@sha256:")
        inspect = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(inspect.stdout)["Digest"] == pinned.split("@")[1]
        assert "Writing manifest to image destination" in result.stderr  # the push stream was read
    finally:
        podman("rmi", "-f", reference)


def test_unreachable_registry_fails_after_retries_and_reports_no_digest(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str
) -> None:
    write_recipe(
        project,
        "nowhere",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: hello, install: [nc-hello]}\n",
    )
    reference = "127.0.0.1:9/custom/nowhere:v1"  # the discard port: nothing listens
    try:
        started = time.monotonic()
        result = nestcustom(
            "build",
            "recipes/nowhere.yaml",
            "--tag",
            reference,
            "--push",
            "--no-tls-verify",
            cwd=project,
        )
        assert result.returncode == 1
        assert result.stdout == ""  # no REF@digest for a push that did not happen
        assert "cannot push 127.0.0.1:9/custom/nowhere:v1" in result.stderr
        assert "(after 4 attempts)" in result.stderr
        assert "retrying in 1 s" in result.stderr and "retrying in 4 s" in result.stderr
        assert time.monotonic() - started >= 7  # backoff 1 + 2 + 4 s
    finally:
        podman("rmi", "-f", reference)


def test_parallel_builds_json_summary(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str
) -> None:
    shared = "  - {name: common, install: [nc-libgreet]}\n"
    write_recipe(
        project,
        "one",
        nestos_sp2_image,
        rpm_repo_url,
        shared + "  - {name: own, install: [nc-hello]}\n",
    )
    write_recipe(
        project,
        "two",
        nestos_sp2_image,
        rpm_repo_url,
        shared + "  - {name: own, install: [nc-scriptlet]}\n",
    )
    template = f"localhost/nctest/par-{uuid.uuid4().hex[:8]}-{{name}}:latest"
    try:
        result = nestcustom(
            "build",
            "recipes/one.yaml",
            "recipes/two.yaml",
            "--jobs",
            "2",
            "--tag",
            template,
            "--json",
            cwd=project,
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)["images"]
        assert [item["name"] for item in summary] == ["one", "two"]
        for item in summary:
            assert item["ok"] is True
            assert image_exists(item["reference"])
            assert [step["name"] for step in item["steps"]][:4] == [
                "base",
                "repos",
                "layer common",
                "layer own",
            ]
            assert all(step["seconds"] >= 0 for step in item["steps"])
            assert item["size"] > 0 and item["layers"] > 1
    finally:
        for name in ("one", "two"):
            podman("rmi", "-f", template.replace("{name}", name))


def test_unchanged_rebuild_reruns_nothing_and_last_layer_change_reruns_one(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    layers = "".join(
        f"  - {{name: l{i}, install: [{p}]}}\n"
        for i, p in enumerate(["nc-libgreet", "nc-hello", "nc-scriptlet"])
    )
    write_recipe(project, "cache", nestos_sp2_image, rpm_repo_url, layers)

    def steps() -> list[dict[str, object]]:
        result = nestcustom("build", "recipes/cache.yaml", "--tag", tag, "--json", cwd=project)
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout)["images"][0]["steps"])

    def rerun_layers(run: list[dict[str, object]]) -> list[object]:
        return [s["name"] for s in run if str(s["name"]).startswith("layer ") and not s["cached"]]

    steps()
    assert rerun_layers(steps()) == []
    (project / "recipes" / "cache.yaml").write_text(
        (project / "recipes" / "cache.yaml")
        .read_text()
        .replace("[nc-scriptlet]", "[nc-scriptlet, strace]")
    )
    assert rerun_layers(steps()) == ["layer l2"]
    reordered = (
        (project / "recipes" / "cache.yaml")
        .read_text()
        .replace("[nc-scriptlet, strace]", "[strace, nc-scriptlet, strace]")
    )
    (project / "recipes" / "cache.yaml").write_text(reordered)
    assert rerun_layers(steps()) == []


def test_interrupt_leaves_no_tag_and_no_containers(
    project: Path, rpm_repo_url: str, own_base: tuple[str, str], tag: str
) -> None:
    # Containers are counted by the build's own base image: a comparison of every
    # container before and after (as this test did) also counts other users' builds
    # on a shared host, and podman 4.3 finishing a cancelled step after the old
    # clean-up window had given up. Both made it fail now and then.
    base, base_id = own_base
    write_recipe(
        project,
        "slow",
        base,
        rpm_repo_url,
        "  - {name: hello, install: [nc-hello]}\n  - {name: tools, install: [strace]}\n",
    )
    process = start_nestcustom(
        "build", "recipes/slow.yaml", "--tag", tag, "--no-cache", cwd=project
    )
    read_until(process, "STEP 3/")
    _, stderr = interrupt(process)
    assert process.returncode == 130, stderr
    assert "interrupted by SIGINT" in stderr
    assert not image_exists(tag)
    assert containers_from(base_id) == []


def test_podman_missing_is_a_clear_error(
    project: Path, nestos_sp2_image: str, rpm_repo_url: str
) -> None:
    write_recipe(
        project, "nopodman", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    env["PATH"] = "/nonexistent"
    env["XDG_RUNTIME_DIR"] = str(project)  # no socket there
    result = nestcustom("build", "recipes/nopodman.yaml", cwd=project, env=env)
    assert result.returncode == 1
    assert "error: podman is not installed" in result.stderr
    assert "hint: install it (apt-get install podman)" in result.stderr
