"""The processes of the build steps our own podman service runs, found by pid.

A RUN step is a container the service starts through buildah's OCI runtime;
the service and the runtime share the service's session, a container's
processes get a session of their own. So the step processes of *our* service
are its descendants in another session, and nothing else on the host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path

log = logging.getLogger("nestcustom.podman")


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def step_processes(service_pid: int) -> list[int]:
    """Processes of the step containers below our service: those in another session.

    The service and the OCI runtime processes it forks share the service's
    session; a container's processes get their own.
    """
    table = _process_table()
    if service_pid not in table:
        return []
    session = table[service_pid][1]
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [service_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if table[child][1] != session:
                found.append(child)
    return found


def kill_step_processes(service_pid: int) -> int:
    """SIGKILL every step container process of our service; how many there were."""
    pids = step_processes(service_pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        log.debug("killed step processes %s of the podman service %d", pids, service_pid)
    return len(pids)


def kill_step_running(service_pid: int, command: str) -> int:
    """SIGKILL the step container of our service whose shell runs `command` (blanks
    compared loosely: buildah joins a RUN's continued lines); how many processes.

    A step's first process is `/bin/sh -c COMMAND`, its session's leader; the other
    steps of the service (builds running beside it, with --jobs) are left alone.
    """
    wanted = " ".join(command.split())
    table = _process_table()
    sessions = set()
    for pid in step_processes(service_pid):
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            table.get(pid, (0, 0))[1] == pid
            and len(argv) >= 3
            and argv[1] == b"-c"
            and " ".join(argv[2].decode(errors="replace").split()) == wanted
        ):
            sessions.add(pid)
    killed = [p for p in step_processes(service_pid) if table.get(p, (0, 0))[1] in sessions]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if killed:
        log.debug("killed step processes %s (step timeout)", killed)
    return len(killed)
