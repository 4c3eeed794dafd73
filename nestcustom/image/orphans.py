"""Our podman API services, recorded so that none outlives its nestcustom.

The service a run starts dies with it: its guard (image/guard.py) hears of the
run's death from the kernel, even after a SIGKILL, and stops the service
cleanly. What is left anyway (a guard that was itself killed, a directory
nobody could remove) is removed by a later run, but only on proof: each
service's socket directory holds `owner.json`, naming the nestcustom process,
the guard and the service by pid *and* start time (field 22 of
/proc/PID/stat, so a reused pid is never taken for ours). A record whose owner
is gone is such a leftover: the service's step processes, the service and the
guard are stopped, and the directory removed. Nothing is ever killed by name
or pattern.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from nestcustom.image.processes import kill_step_processes

log = logging.getLogger("nestcustom.podman")

PREFIX = "nestcustom-podman-"
RECORD = "owner.json"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


@dataclass(frozen=True)
class Record:
    owner_pid: int
    owner_start: int
    guard_pid: int
    guard_start: int
    service_pid: int
    service_start: int

    def owner_alive(self) -> bool:
        return start_time(self.owner_pid) == self.owner_start

    def guard_alive(self) -> bool:
        return start_time(self.guard_pid) == self.guard_start

    def service_alive(self) -> bool:
        return start_time(self.service_pid) == self.service_start


def write_record(directory: Path, owner_pid: int, service_pid: int) -> None:
    """Record who started the service (`owner_pid`), its guard (this process) and the service."""
    guard = os.getpid()
    record = {
        "owner_pid": owner_pid,
        "owner_start": start_time(owner_pid) or 0,
        "guard_pid": guard,
        "guard_start": start_time(guard),
        "service_pid": service_pid,
        "service_start": start_time(service_pid),
    }
    temporary = directory / f".{RECORD}.tmp"
    temporary.write_text(json.dumps(record))
    temporary.replace(directory / RECORD)  # whole or not at all: a reader never sees half


def read_record(directory: Path) -> Record | None:
    try:
        data = json.loads((directory / RECORD).read_text())
        return Record(**{f.name: int(data[f.name]) for f in fields(Record)})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_leftovers(parent: Path | None = None) -> list[int]:
    """Stop the services earlier nestcustom runs provably left; their pids."""
    removed = []
    for directory in sorted((parent or Path(tempfile.gettempdir())).glob(f"{PREFIX}*")):
        record = read_record(directory)
        if record is None or record.owner_alive():
            continue  # not provably ours, or its run is still going
        if record.service_alive():
            kill_step_processes(record.service_pid)
            _stop(record.service_pid, record.service_alive)
            removed.append(record.service_pid)
            log.warning(
                "stopped podman service %d that nestcustom %d left running",
                record.service_pid,
                record.owner_pid,
            )
        if record.guard_alive():
            _stop(record.guard_pid, record.guard_alive)
        shutil.rmtree(directory, ignore_errors=True)
    return removed


def _stop(pid: int, alive: Callable[[], bool]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
