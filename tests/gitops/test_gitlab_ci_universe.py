"""The `.gitlab-ci.yml` that `nestcustom init` writes really runs: gitlab-ci-local, shell executor.

The repository `init` made (its example recipe pointed at the universe's RPM
repository and fixture base, plus a second recipe) runs its pipeline on this
machine against the local registry: validate, render check, matrix, build,
test, diff and, on the default branch, push with release tags. A second run,
after a commit that adds a package to one recipe, builds only that recipe and
shows the package it added against the published image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitops.helpers import GIT_ENV, STORAGE_RACES, commit_all, git, nestcustom
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe

OTHER = """\
name: other
description: a second image, untouched by the change
base: {{image: "{base}"}}
repos:
  - {{id: nctest, baseurl: "{url}", gpgcheck: false}}
layers:
  - {{name: hello, install: [nc-hello]}}
tests:
  packages: {{present: [nc-hello]}}
"""


@pytest.fixture
def namespace(registry: Registry) -> Iterator[str]:
    """Where the pipeline pushes; the images it leaves in local storage go afterwards."""
    yield f"{registry.host}/ci"
    for name in ("example", "other"):
        subprocess.run(
            ["podman", "rmi", "-f", f"{registry.host}/ci/{name}:latest"],
            capture_output=True,
            check=False,
        )


def digest_of(reference: str) -> str:
    done = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            f"docker://{reference}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def run_pipeline(repo: Path, before: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("gitlab-ci-local")
    if binary is None:
        pytest.fail("gitlab-ci-local is not installed: run scripts/setup-host (as root)")
    variables: list[str] = []  # the default branch: main, gitlab-ci-local's fallback
    if before:
        variables += ["--variable", f"CI_COMMIT_BEFORE_SHA={before}"]
    env = {
        **os.environ,
        **GIT_ENV,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for _ in range(2):  # once more when podman lost a race in the shared storage
        done = subprocess.run(
            [binary, "--force-shell-executor", "--no-color", *variables],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
            env=env,
        )
        if done.returncode == 0 or not any(r in done.stdout + done.stderr for r in STORAGE_RACES):
            break
    return done


def test_the_generated_gitlab_pipeline_runs_through_build_test_and_push(
    tmp_path: Path, gitops_base: str, rpm_repo_url: str, registry: Registry, namespace: str
) -> None:
    base = gitops_base
    repo = tmp_path / "images"
    made = nestcustom(
        "init", repo, "--registry", namespace, "--base", base, "--no-tls-verify", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    example = repo / "recipes" / "example.yaml"
    example.write_text(
        example.read_text().replace(
            "\nlayers:",
            f'\nrepos:\n  - {{id: nctest, baseurl: "{rpm_repo_url}", gpgcheck: false}}\n\nlayers:',
        )
    )
    (repo / "recipes" / "other.yaml").write_text(OTHER.format(base=base, url=rpm_repo_url))
    assert nestcustom("render", "--all", cwd=repo).returncode == 0
    commit_all(repo, "images")
    git(repo, "remote", "add", "origin", "https://gitlab.example.com/org/images.git")

    first = run_pipeline(repo)
    log = first.stdout + first.stderr
    (tmp_path / "first.log").write_text(log)
    assert first.returncode == 0, log[-6000:]
    for job in ("validate", "matrix", "build"):
        assert re.search(rf"{job}\s+finished in", log) or f"PASS  {job}" in log, log[-6000:]
    assert "deploy-canary" not in re.findall(r"PASS\s+(\S+)", log)  # manual: not run
    assert "1 recipe(s) valid" not in log  # two recipes
    assert "2 recipe(s) valid" in log
    assert "containerfiles are up to date" in log
    assert "_example: no published image to compare with yet._" in log
    published = (repo / "reports" / "published.txt").read_text().split()
    assert sorted(p.rpartition("@")[0] for p in published) == [
        f"{namespace}/example",
        f"{namespace}/other",
    ]
    commit = git(repo, "rev-parse", "HEAD").strip()
    tags = sorted(registry.tags("ci/example"))
    assert tags == sorted(["latest", "22.03-LTS-SP2.20261130.0", f"sha-{commit[:12]}"])
    digests = {digest_of(f"{namespace}/example:{tag}") for tag in tags}
    assert digests == {p.rpartition("@")[2] for p in published if "/example@" in p}
    junit = (repo / "reports" / "example.xml").read_text()
    assert 'failures="0"' in junit and "<testcase" in junit

    # A change to one recipe: only it is built, and its diff shows the added package.
    example.write_text(example.read_text().replace("install: [strace]", "install: [strace, jq]"))
    assert nestcustom("render", "--all", cwd=repo).returncode == 0
    commit_all(repo, "example: jq")
    shutil.rmtree(repo / "reports")
    second = run_pipeline(repo, before=commit)
    log = second.stdout + second.stderr
    (tmp_path / "second.log").write_text(log)
    assert second.returncode == 0, log[-6000:]
    matrix = (repo / "matrix.env").read_text()
    assert "NESTCUSTOM_NAMES=example\n" in matrix and "NESTCUSTOM_COUNT=1\n" in matrix
    diff = (repo / "reports" / "example-diff.md").read_text()
    assert "| added | `jq." in diff
    assert "| removed |" not in diff
    assert "the package diff failed" not in log
    assert not (repo / "reports" / "other-diff.md").exists()
    tags = registry.tags("ci/example")
    assert "22.03-LTS-SP2.20261130.1" in tags
    latest = digest_of(f"{namespace}/example:latest")
    assert (repo / "reports" / "published.txt").read_text().split() == [
        f"{namespace}/example@{latest}"
    ]
    assert latest not in digests  # the change was published


def pipeline_jobs(repo: Path) -> dict[str, dict[str, object]]:
    binary = shutil.which("gitlab-ci-local")
    if binary is None:
        pytest.fail("gitlab-ci-local is not installed: run scripts/setup-host (as root)")
    done = subprocess.run(
        [binary, "--list-json"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return {str(job["name"]): job for job in json.loads(done.stdout)}


def test_deploys_are_manual_canary_first_and_only_on_the_default_branch(tmp_path: Path) -> None:
    repo = tmp_path / "images"
    assert nestcustom("init", repo, cwd=tmp_path).returncode == 0
    commit_all(repo, "images")
    jobs = pipeline_jobs(repo)
    assert list(jobs) == ["validate", "matrix", "build", "deploy-canary", "deploy-rest"]
    assert [jobs[name]["when"] for name in jobs] == ["on_success"] * 3 + ["manual"] * 2
    needs = jobs["deploy-rest"]["needs"]
    assert isinstance(needs, list)
    assert [n["job"] for n in needs] == ["build", "deploy-canary"]
    git(repo, "checkout", "-q", "-b", "feature")
    feature = pipeline_jobs(repo)  # --list-json lists jobs that will not run as when: never
    assert [feature[name]["when"] for name in feature] == ["on_success"] * 3 + ["never"] * 2
