"""Rendered output from another repository's directory builds; release tags on one digest."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitops.helpers import build, commit_all, git, nestcustom
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe


def write_project(project: Path, base: str, repo_url: str) -> None:
    (project / "recipes").mkdir(parents=True)
    (project / "files").mkdir()
    (project / "files" / "motd").write_text("rendered elsewhere\n")
    (project / "recipes" / "elsewhere.yaml").write_text(
        "name: elsewhere\n"
        "description: rendered from another repository\n"
        f'base: {{image: "{base}"}}\n'
        f'repos:\n  - {{id: nctest, baseurl: "{repo_url}", gpgcheck: false}}\n'
        "layers:\n  - {name: hello, install: [nc-hello]}\n"
        "files:\n  - {src: files/motd, dest: /etc/motd, mode: '0644'}\n"
    )


@pytest.fixture
def tag() -> Iterator[str]:
    reference = f"localhost/nctest/gitops-{uuid.uuid4().hex[:10]}:latest"
    yield reference
    subprocess.run(["podman", "rmi", "-f", reference], capture_output=True, check=False)


def test_render_all_from_another_repository_gives_a_containerfile_that_builds(
    tmp_path: Path, gitops_base: str, rpm_repo_url: str, tag: str
) -> None:
    project = tmp_path / "images"
    write_project(project, gitops_base, rpm_repo_url)
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    out = project / "out"
    result = nestcustom(
        "render", "--all", "--recipes", project / "recipes", "--out", out, cwd=other
    )
    assert result.returncode == 0, result.stderr
    containerfile = out / "elsewhere" / "Containerfile"
    built = subprocess.run(
        ["podman", "build", "--network=host", "-q", "-f", str(containerfile), "-t", tag,
         str(project)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    motd = subprocess.run(
        ["podman", "run", "--rm", tag, "cat", "/etc/motd"], capture_output=True, text=True
    )
    assert motd.stdout == "rendered elsewhere\n"


def test_release_tags_name_one_digest_and_a_rerun_adds_none(
    tmp_path: Path, gitops_base: str, rpm_repo_url: str, registry: Registry
) -> None:
    project = tmp_path / "images"
    write_project(project, gitops_base, rpm_repo_url)
    commit_all(project, "elsewhere")
    commit = git(project, "rev-parse", "HEAD").strip()
    reference = f"{registry.host}/tags/elsewhere:stable"
    args = ("recipes/elsewhere.yaml", "--tag", reference, "--push", "--release-tags")
    try:
        first = build(*args, "--no-tls-verify", cwd=project)
        assert first.returncode == 0, first.stderr
        digest = first.stdout.strip().rpartition("@")[2]
        version = "22.03-LTS-SP2.20261130.0"
        assert f"elsewhere: tagged {registry.host}/tags/elsewhere:{version}" in first.stderr
        assert sorted(registry.tags("tags/elsewhere")) == sorted(
            ["stable", version, f"sha-{commit[:12]}"]
        )
        for name in registry.tags("tags/elsewhere"):
            served = subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                 f"docker://{registry.host}/tags/elsewhere:{name}"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            assert served.stdout.strip() == digest, name
        again = build(*args, "--no-tls-verify", cwd=project)
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout
        assert len(registry.tags("tags/elsewhere")) == 3  # the same tags, reused
        # a dirty tree: a new image, the next serial, and no sha- tag
        (project / "files" / "motd").write_text("uncommitted\n")
        dirty = build(*args, "--no-tls-verify", cwd=project)
        assert dirty.returncode == 0, dirty.stderr
        assert "no sha- tag: the work tree has uncommitted changes" in dirty.stderr
        assert sorted(registry.tags("tags/elsewhere")) == sorted(
            ["stable", version, "22.03-LTS-SP2.20261130.1", f"sha-{commit[:12]}"]
        )
        without_push = nestcustom(
            "build", "recipes/elsewhere.yaml", "--tag", reference, "--release-tags", cwd=project
        )
        assert without_push.returncode == 2
        assert "--release-tags goes with --push" in without_push.stderr
    finally:
        subprocess.run(["podman", "rmi", "-f", reference], capture_output=True, check=False)
