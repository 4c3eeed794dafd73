"""The build job of the GitHub workflow `init` writes, run step by step on the universe.

No GitHub runner: the job's `run:` steps are run as a runner would run them
(tests.gitops.helpers.run_github_job) for one matrix entry, on a push to the
default branch: build, test, the package diff for the job summary, and the
push with release tags. A second push after a change shows the change.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.gitops.helpers import commit_all, nestcustom, run_github_job
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe


@pytest.fixture
def image(registry: Registry) -> Iterator[str]:
    reference = f"{registry.host}/gh/example:latest"
    yield reference
    subprocess.run(["podman", "rmi", "-f", reference], capture_output=True, check=False)


def push_event(image: str) -> dict[str, str]:
    """The values of the build job's expressions for a push of the default branch."""
    condition = "env.ON_DEFAULT_BRANCH == 'true' && github.event_name == 'push'"
    return {
        "format('{0}/{1}:latest', '" + image.rsplit("/", 2)[0] + "/gh', matrix.name)": image,
        "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)": "true",
        "secrets.REGISTRY_USER": "",
        "secrets.REGISTRY_PASSWORD": "",
        # a repository without a signing key: pushed unsigned (test_signing_pipelines.py
        # runs the signed path of the same step)
        "secrets.NESTCUSTOM_SIGNING_KEY": "",
        "secrets.NESTCUSTOM_SIGNING_PASSPHRASE": "",
        "vars.NESTCUSTOM_SIGNATURE_STORE": "",
        "github.token": "",
        "matrix.recipe": "recipes/example.yaml",
        "matrix.name": "example",
        "if: github.event_name == 'pull_request' && "
        "github.event.pull_request.head.repo.full_name == github.repository": "false",
        f"if: {condition}": "true",
    }


def test_the_github_build_job_builds_tests_diffs_and_pushes(
    tmp_path: Path, gitops_base: str, rpm_repo_url: str, registry: Registry, image: str
) -> None:
    repo = tmp_path / "images"
    made = nestcustom(
        "init", repo, "--registry", f"{registry.host}/gh", "--base", gitops_base,
        "--no-tls-verify", cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    example = repo / "recipes" / "example.yaml"
    repos = f'\nrepos:\n  - {{id: nctest, baseurl: "{rpm_repo_url}", gpgcheck: false}}\n'
    example.write_text(example.read_text().replace("\nlayers:", repos + "\nlayers:"))
    assert nestcustom("render", "--all", cwd=repo).returncode == 0
    commit_all(repo, "images")
    workflow = yaml.safe_load((repo / ".github/workflows/nestcustom.yml").read_text())

    assert run_github_job(workflow, "build", repo, push_event(image)) == {}
    assert (repo / "diff.md").read_text() == "_example: no published image to compare with yet._\n"
    assert "_example: no published image" in (tmp_path / "build.summary").read_text()
    published = (repo / "published" / "example.txt").read_text().split()
    assert len(published) == 1 and published[0].startswith(f"{registry.host}/gh/example@sha256:")
    assert len(registry.tags("gh/example")) == 3  # latest, version, sha-
    junit = (repo / "test-example.xml").read_text()
    assert 'failures="0"' in junit

    example.write_text(example.read_text().replace("install: [strace]", "install: [strace, jq]"))
    assert nestcustom("render", "--all", cwd=repo).returncode == 0
    commit_all(repo, "example: jq")
    run_github_job(workflow, "build", repo, push_event(image))
    diff = (repo / "diff.md").read_text()
    assert "| added | `jq." in diff and "| removed |" not in diff
    assert "| added | `jq." in (tmp_path / "build.summary").read_text()
    assert len(registry.tags("gh/example")) == 5  # and a new version and sha- tag
