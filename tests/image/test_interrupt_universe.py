"""Ctrl-C and SIGTERM during a build: prompt, exact clean-up, other builds untouched.

The step that runs when the signal comes fetches its packages from a repo that
accepts connections and never answers, so it would hang for the fetch timeout
(30 s) unless nestcustom stops it. Every build here starts from a base image
made for the test (a LABEL on the fixture base: a new image ID), so the
containers of this build are told apart from anyone else's by that ID alone.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.universe import (
    containers_from,
    descendants,
    image_exists,
    interrupt,
    own_base,
    pids_alive,
    podman,
    project,
    read_until,
    start_nestcustom,
    tag,
    write_recipe,
)

pytestmark = pytest.mark.universe
__all__ = ["own_base", "project", "tag"]


@pytest.fixture
def stalled_repo() -> Iterator[str]:
    """The URL of an RPM repo that accepts connections and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"


def service_of(process: subprocess.Popen[str]) -> tuple[list[int], str]:
    """(pids below `process`, the socket directory of the API service it started)."""
    pids = descendants(process.pid)
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"service" in argv and argv[-2].startswith(b"unix://"):
            return pids, str(Path(argv[-2].decode().removeprefix("unix://")).parent)
    raise AssertionError("nestcustom started no podman API service")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_running_step_and_leaves_nothing(
    project: Path,
    stalled_repo: str,
    own_base: tuple[str, str],
    tag: str,
    signum: int,
    code: int,
) -> None:
    base, base_id = own_base
    write_recipe(project, "stalled", base, stalled_repo, "  - {name: hello, install: [nc-hello]}\n")
    process = start_nestcustom("build", "recipes/stalled.yaml", "--tag", tag, cwd=project)
    read_until(process, "STEP 3/")  # the RUN that fetches from the stalled repo
    time.sleep(1)  # well inside the fetch
    pids, socket_dir = service_of(process)
    assert containers_from(base_id), "the step's working container should exist by now"
    seconds, stderr = interrupt(process, signum)
    assert process.returncode == code, stderr
    # Without being stopped the step runs into its 30 s fetch timeout.
    assert seconds < 10, f"took {seconds:.1f} s to stop"
    [last] = [line for line in stderr.splitlines() if "interrupted" in line]
    assert last == (
        f"interrupted by {signal.Signals(signum).name}: "
        "the build stopped; no tag was set, nothing was pushed"
    )
    assert "Traceback" not in stderr
    assert not image_exists(tag)
    assert containers_from(base_id) == []
    assert pids_alive(pids) == [], "the API service or a step process outlived nestcustom"
    assert not Path(socket_dir).exists()


def test_interrupting_one_build_leaves_a_concurrent_build_alone(
    project: Path,
    rpm_repo_url: str,
    stalled_repo: str,
    own_base: tuple[str, str],
    tag: str,
) -> None:
    base, _ = own_base
    write_recipe(project, "stalled", base, stalled_repo, "  - {name: hello, install: [nc-hello]}\n")
    write_recipe(
        project, "other", base, rpm_repo_url, "  - {name: tools, install: [nc-hello, strace]}\n"
    )
    other_tag = tag.replace(":latest", "-other:latest")
    stalled = start_nestcustom("build", "recipes/stalled.yaml", "--tag", tag, cwd=project)
    read_until(stalled, "STEP 3/")
    other = start_nestcustom(
        "build", "recipes/other.yaml", "--tag", other_tag, "--no-cache", cwd=project
    )
    try:
        read_until(other, "STEP 3/")  # its working container exists, from the same base
        interrupt(stalled)
        assert stalled.returncode == 130
        _, stderr = other.communicate(timeout=300)
        assert other.returncode == 0, stderr
        assert image_exists(other_tag)
    finally:
        other.kill()
        podman("rmi", "-f", other_tag)


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(
    project: Path, stalled_repo: str, own_base: tuple[str, str], tag: str
) -> None:
    base, base_id = own_base
    write_recipe(project, "stalled", base, stalled_repo, "  - {name: hello, install: [nc-hello]}\n")
    process = start_nestcustom("build", "recipes/stalled.yaml", "--tag", tag, cwd=project)
    read_until(process, "STEP 3/")
    pids = descendants(process.pid)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not image_exists(tag)
    assert pids_alive(pids) == []
    # A cut-short stop may leave podman finishing its clean-up: under load (the fast suite
    # beside this one) that took over 10 s once in a CI rehearsal.
    deadline = time.monotonic() + 30
    while containers_from(base_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_from(base_id) == []


def test_kill_9_leaves_no_service_or_step_and_the_next_run_removes_its_directory(
    project: Path, stalled_repo: str, own_base: tuple[str, str], tag: str
) -> None:
    """SIGKILL gives nestcustom no chance to clean up: the kernel stops its service (a
    parent-death signal), the step goes with the service, and the next run removes the
    socket directory the killed one left (it proves the run is gone by pid and start time)."""
    base, base_id = own_base
    write_recipe(project, "stalled", base, stalled_repo, "  - {name: hello, install: [nc-hello]}\n")
    process = start_nestcustom("build", "recipes/stalled.yaml", "--tag", tag, cwd=project)
    read_until(process, "STEP 3/")
    time.sleep(1)
    pids, socket_dir = service_of(process)
    process.kill()
    process.communicate(timeout=60)
    deadline = time.monotonic() + 15
    while pids_alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids_alive(pids) == [], "the API service or a step process outlived a SIGKILLed run"
    assert not image_exists(tag)
    # The killed run could not remove its socket directory; the next run that starts a
    # service does (any nestcustom on this machine may be first, so it is not checked here).
    later = start_nestcustom("build", "recipes/stalled.yaml", "--tag", tag, cwd=project)
    read_until(later, "STEP 3/")
    interrupt(later)
    assert not Path(socket_dir).exists()
    deadline = time.monotonic() + 10
    while containers_from(base_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_from(base_id) == []
