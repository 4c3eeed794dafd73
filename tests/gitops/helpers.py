"""Running nestcustom and git as a user of a recipe repository would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_AUTHOR_DATE": "2026-11-30T10:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-11-30T10:00:00+00:00",
}


def nestcustom(
    *args: str | Path, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# podman 4.3 trips over other sessions' builds and removals in the shared storage
# (a cache lookup meets a layer removed meanwhile); such a build is tried again.
STORAGE_RACES = ("layer not known", "identifier is not a container", "image not known")


def build(*args: str | Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`nestcustom build ARGS`, tried again (twice at most) when it lost a storage race."""
    for _ in range(3):
        done = nestcustom("build", *args, cwd=cwd, timeout=timeout)
        if done.returncode == 0 or not any(race in done.stderr for race in STORAGE_RACES):
            break
    return done


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout


def commit_all(repo: Path, message: str) -> str:
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message, "--allow-empty")
    return git(repo, "rev-parse", "HEAD").strip()


@contextmanager
def pinned(image: str, workdir: Path | None = None) -> Iterator[str]:
    """A private tag of the image `image` names now, removed afterwards.

    The universe's fixture base tag is shared with every worktree on the machine: a
    session building another version of it retags or removes it meanwhile. Builds that
    must stand on one base use this tag instead. With `workdir`, a base tag that has
    gone is built again (tests.universe.base.build) before it is pinned.
    """
    tag = image.rpartition("/")[2].partition(":")[2] or "1"  # keeps the base's version
    reference = f"localhost/nctest/gitops-base-{uuid.uuid4().hex[:10]}:{tag}"
    for attempt in range(3):
        done = subprocess.run(["podman", "tag", image, reference], capture_output=True, text=True)
        if done.returncode == 0:
            break
        if workdir is None or attempt == 2:
            raise RuntimeError(f"cannot pin {image}: {done.stderr.strip()}")
        from tests.universe.base.build import build_base_image

        image = build_base_image("sp2", workdir)
    try:
        yield reference
    finally:
        subprocess.run(["podman", "untag", reference], check=False, capture_output=True)


def run_github_job(
    workflow: dict[str, Any], job: str, repo: Path, expressions: dict[str, str]
) -> dict[str, str]:
    """The job's `run:` steps in order, as a runner would run them (bash -e, the workflow's
    and the step's env, `${{ }}` replaced from `expressions`); the outputs they wrote."""
    outputs = repo.parent / f"{job}.output"
    outputs.write_text("")

    def expand(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            expression = match.group(1).strip()
            assert expression in expressions, f"no value for ${{{{ {expression} }}}}"
            return expressions[expression]

        return re.sub(r"\$\{\{(.*?)\}\}", value, text)

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.update({k: expand(str(v)) for k, v in workflow["env"].items()})
    env["GITHUB_OUTPUT"] = str(outputs)
    env["GITHUB_STEP_SUMMARY"] = str(repo.parent / f"{job}.summary")
    env.update({k: expand(str(v)) for k, v in (workflow["jobs"][job].get("env") or {}).items()})
    for step in workflow["jobs"][job]["steps"]:
        if "run" not in step or "pip install" in step["run"]:
            continue  # actions, and installing nestcustom: it is installed here
        if "if" in step and expressions[f"if: {step['if']}"] != "true":
            continue
        step_env = {**env, **{k: expand(str(v)) for k, v in (step.get("env") or {}).items()}}
        done = subprocess.run(
            ["bash", "-e", "-c", expand(step["run"])],
            cwd=repo,
            env=step_env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{step['run']}\n{done.stdout}{done.stderr}"
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines())
