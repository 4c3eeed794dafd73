"""A RUN step past its timeout is killed by pid below our podman service, and only that
step: real processes here stand in for the service (one session) and its step
containers (`sh -c COMMAND`, each the leader of a session of its own)."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.image.processes import kill_step_running, step_processes
from nestcustom.image.stepwatch import StepWatch

SLOW = "sleep 30; echo slow"
OTHER = "sleep 31; echo other"


def _argv(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.fixture
def service() -> Iterator[int]:
    """A 'service' with two step containers below it: SLOW and OTHER."""
    script = f"setsid sh -c '{SLOW}' & setsid sh -c '{OTHER}' & wait"
    process = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(step_processes(process.pid)) < 4:  # two shells, two sleeps
            assert time.monotonic() < deadline, "the step processes did not start"
            time.sleep(0.02)
        yield process.pid
    finally:
        for pid in step_processes(process.pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        process.kill()
        process.wait()


def _alive(service: int) -> list[str]:
    return sorted(_argv(pid).strip() for pid in step_processes(service))


def test_only_the_step_running_the_command_is_killed(service: int) -> None:
    assert kill_step_running(service, "sleep   30;\n echo slow") == 2  # its shell and sleep
    deadline = time.monotonic() + 5
    while len(step_processes(service)) > 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _alive(service) == ["sh -c " + OTHER, "sleep 31"]


def test_a_process_that_ends_while_the_steps_are_read_is_passed_over(
    service: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nestcustom.image import processes

    listed = processes.step_processes
    gone = 2**22 + 1  # above the largest pid Linux gives: no such process
    monkeypatch.setattr(processes, "step_processes", lambda pid: [gone, *listed(pid)])
    assert kill_step_running(service, SLOW) == 2


def test_a_step_past_its_timeout_fails_saying_so_and_is_stopped(service: int) -> None:
    with StepWatch(io.BytesIO(), 0.2, service) as watch:
        watch.started(f"RUN --mount=type=cache,target=/var/cache/dnf {SLOW}")
        deadline = time.monotonic() + 5
        while not watch.stopped and time.monotonic() < deadline:
            time.sleep(0.05)
    failed = watch.failure(3, 5, ["STEP 3/5: RUN ...", "downloading"])
    assert failed is not None
    assert failed.message == "ran longer than 0.2 s, the step timeout; it was stopped"
    assert (failed.step, failed.output) == (3, ("STEP 3/5: RUN ...", "downloading"))
    deadline = time.monotonic() + 5
    while len(step_processes(service)) > 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _alive(service) == ["sh -c " + OTHER, "sleep 31"]
