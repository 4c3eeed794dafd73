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
