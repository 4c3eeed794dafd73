"""No podman service outlives its nestcustom: the kernel stops it when nestcustom dies, and a
later run stops what an earlier one provably left (by recorded pid and start time only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.image import orphans


def gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if orphans.start_time(pid) is None:
            return True
        time.sleep(0.05)
    return False


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def stand_in_service(directory: Path, owner_pid: int) -> subprocess.Popen[bytes]:
    """A process recorded as the podman service of a run whose nestcustom is `owner_pid`
    (with another as its guard), as the guard records them."""
    directory.mkdir()
    guard = subprocess.Popen(["sleep", "600"], start_new_session=True)
    service = subprocess.Popen(["sleep", "600"], start_new_session=True)
    record = {
        "owner_pid": owner_pid,
        "owner_start": orphans.start_time(owner_pid) or 0,
        "guard_pid": guard.pid,
        "guard_start": orphans.start_time(guard.pid),
        "service_pid": service.pid,
        "service_start": orphans.start_time(service.pid),
    }
    (directory / orphans.RECORD).write_text(json.dumps(record))
    GUARDS.append(guard)
    return service


GUARDS: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_stand_ins_left() -> Iterator[None]:
    yield
    while GUARDS:
        guard = GUARDS.pop()
        guard.kill()
        guard.wait()


def test_a_service_whose_nestcustom_is_gone_is_stopped_and_its_directory_removed(
    tmp_path: Path,
) -> None:
    left = tmp_path / f"{orphans.PREFIX}old"
    service = stand_in_service(left, dead_pid())
    assert orphans.remove_leftovers(tmp_path) == [service.pid]
    assert service.wait(timeout=10) == -signal.SIGTERM
    assert GUARDS[-1].wait(timeout=10) == -signal.SIGTERM
    assert not left.exists()


def test_a_running_nestcustoms_service_and_unrecorded_directories_are_left_alone(
    tmp_path: Path,
) -> None:
    mine = tmp_path / f"{orphans.PREFIX}running"
    service = stand_in_service(mine, os.getpid())
    stranger = tmp_path / f"{orphans.PREFIX}no-record"
    stranger.mkdir()
    (stranger / "podman.sock").write_text("")
    try:
        assert orphans.remove_leftovers(tmp_path) == []
        assert service.poll() is None
        assert mine.exists() and stranger.exists()
    finally:
        service.kill()
        service.wait()


def test_a_reused_pid_is_not_taken_for_the_recorded_service(tmp_path: Path) -> None:
    """Same pid, another start time: another process, never killed."""
    left = tmp_path / f"{orphans.PREFIX}old"
    bystander = stand_in_service(left, dead_pid())
    record = orphans.read_record(left)
    assert record is not None
    (left / orphans.RECORD).write_text(
        (left / orphans.RECORD)
        .read_text()
        .replace(
            f'"service_start": {record.service_start}',
            f'"service_start": {record.service_start + 1}',
        )
    )
    try:
        assert orphans.remove_leftovers(tmp_path) == []
        assert bystander.poll() is None
        assert not left.exists()  # its owner and its service are both gone: only the directory
    finally:
        bystander.kill()
        bystander.wait()


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from nestcustom.image.service import connect
    with connect() as podman:
        print(podman.service_pid, flush=True)
        time.sleep(600)
    """
)


@pytest.mark.universe
def test_the_podman_service_dies_with_a_sigkilled_nestcustom(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("CONTAINER_HOST", None)
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    service_pid = int(child.stdout.readline())
    directories = list(tmp_path.glob(f"{orphans.PREFIX}*"))
    assert len(directories) == 1
    assert orphans.read_record(directories[0]) is not None
    child.kill()
    child.wait()
    assert gone(service_pid), "the podman service outlived the SIGKILLed process"
    # The next run finds the directory the killed one could not remove, and removes it.
    orphans.remove_leftovers(tmp_path)
    assert list(tmp_path.glob(f"{orphans.PREFIX}*")) == []
