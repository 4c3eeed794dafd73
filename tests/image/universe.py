"""Helpers and fixtures of the build tests that run on the universe (real podman)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def nestcustom(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def start_nestcustom(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """nestcustom in the background, its stderr readable line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 300) -> list[str]:
    """Lines of stderr up to and including the first that holds `marker`."""
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            return seen
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"{marker!r} never came; stderr was:\n{''.join(seen)}")


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=300, check=False
    )


def image_exists(reference: str) -> bool:
    return podman("image", "exists", reference).returncode == 0


def image_id(reference: str) -> str:
    return podman("image", "inspect", reference, "--format", "{{.Id}}").stdout.strip()


def labels_of(reference: str) -> dict[str, str]:
    out = podman("image", "inspect", reference, "--format", "{{json .Labels}}").stdout
    return dict(json.loads(out))


def all_containers() -> set[str]:
    """Every container podman's storage holds, buildah's working containers included."""
    return set(podman("ps", "-a", "--external", "--format", "{{.ID}}").stdout.split())


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def descendants(pid: int) -> list[int]:
    """Pids of every process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def interrupt(process: subprocess.Popen[str], signum: int = signal.SIGINT) -> tuple[float, str]:
    """Send `signum`; (seconds until the process ended, the rest of its stderr)."""
    started = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    return time.monotonic() - started, stderr


@pytest.fixture
def tag() -> Iterator[str]:
    """A unique local tag; every image under it is removed afterwards."""
    reference = f"localhost/nctest/{uuid.uuid4().hex[:10]}:latest"
    yield reference
    podman("rmi", "-f", reference)


@pytest.fixture
def project(tmp_path: Path, rpm_repo_url: str, nestos_sp2_image: str) -> Path:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd").write_text("built by the nestcustom tests\n")
    return tmp_path


def git_commit(
    project: Path, message: str = "recipes", when: str = "2024-01-10T12:00:00+00:00"
) -> None:
    """Commit everything in `project` (a git repo with an origin, created on first use)."""
    git = ["git", "-C", str(project), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    if not (project / ".git").exists():
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        subprocess.run(
            [*git, "remote", "add", "origin", "https://git.example.com/org/images.git"], check=True
        )
    subprocess.run([*git, "add", "-A"], check=True)
    env = {**os.environ, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when}
    subprocess.run([*git, "commit", "-qm", message, "--allow-empty"], check=True, env=env)


def write_recipe(
    project: Path, name: str, base: str, repo_url: str, layers: str, extra: str = ""
) -> Path:
    path = project / "recipes" / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        f"description: test image {name}\n"
        f'base: {{image: "{base}"}}\n'
        f'repos:\n  - {{id: nctest, baseurl: "{repo_url}", gpgcheck: false}}\n'
        f"layers:\n{layers}{extra}"
    )
    return path


@pytest.fixture
def own_base(nestos_sp2_image: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(reference, image ID) of a base image no other test or user builds from."""
    reference = f"localhost/nctest/base-{uuid.uuid4().hex[:10]}:1"
    context = tmp_path / "base-context"
    context.mkdir()
    (context / "Containerfile").write_text(
        f"FROM {nestos_sp2_image}\nLABEL org.nestcustom.test.unique={uuid.uuid4().hex}\n"
    )
    done = podman("build", "-q", "-t", reference, str(context))
    assert done.returncode == 0, done.stderr
    yield reference, done.stdout.strip().splitlines()[-1]
    podman("rmi", "-f", reference)


def containers_from(image_id: str) -> list[str]:
    """Containers (buildah's working containers included) made from `image_id`."""
    out = podman("ps", "-a", "--external", "--format", "{{.ID}} {{.ImageID}}").stdout
    return [line.split()[0] for line in out.splitlines() if image_id.startswith(line.split()[1])]
