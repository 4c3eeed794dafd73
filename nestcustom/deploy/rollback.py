"""Boot hosts back into their previous deployment (`nestcustom rollback`), verified."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nestcustom.deploy.hostrun import HostFailed, HostRun, Listener, RolloutOptions, Stop, identity
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.report import HostReport
from nestcustom.deploy.signals import stop_on_signals
from nestcustom.deploy.ssh import Connection, Failure, SshError, SshOptions, ssh_session
from nestcustom.errors import NestcustomError


def rollback_host(
    host: Host,
    ssh: SshOptions,
    options: RolloutOptions,
    journal: Journal,
    listen: Listener,
    stop: threading.Event,
) -> HostReport:
    """`rpm-ostree rollback`, reboot, and check the host booted the deployment it rolled back to."""
    run = HostRun(host, Connection(host, ssh), None, options, journal, listen, stop)
    started = time.monotonic()
    before: str | None = None
    try:
        status = run.status()
        before = identity(status.booted)
        if status.rollback is None:
            raise HostFailed("no rollback deployment on this host", "nothing to go back to")
        run.previous = status.rollback  # where the host must end up
        run.step(
            "rollback",
            lambda: run.conn.run(["rpm-ostree", "rollback"], privileged=True).stdout[-200:],
        )
        old = run.boot_id()

        def reboot() -> str:
            try:
                run.conn.run(["systemctl", "reboot"], privileged=True, timeout=30)
            except SshError as exc:
                if exc.failure is not Failure.UNREACHABLE:
                    raise
            return run.wait_for_reboot(old)

        run.step("reboot", reboot)

        def verify() -> str:
            booted = run.status().booted
            if not run.is_previous(booted):
                raise HostFailed(f"came back on {identity(booted)}, not {identity(run.previous)}")
            return f"booted {identity(booted)}"

        run.step("verify", verify)
    except Stop as stopped:
        return HostReport(
            host.name,
            "interrupted",
            before,
            None,
            tuple(run.steps),
            error=f"stopped before {stopped}",
        )
    except NestcustomError as exc:
        journal.record(host.name, "failed", "ok", error=exc.message)
        return HostReport(
            host.name,
            "failed",
            before,
            None,
            tuple(run.steps),
            error=exc.message.removeprefix(f"{host.name}: "),
            hint=exc.hint,
            seconds=time.monotonic() - started,
        )
    after = identity(run.previous)
    journal.record(host.name, "done", "ok", outcome="rolled back", before=before, after=after)
    return HostReport(
        host.name, "updated", before, after, tuple(run.steps), seconds=time.monotonic() - started
    )


def rollback_hosts(
    hosts: tuple[Host, ...],
    ssh: SshOptions,
    options: RolloutOptions,
    journal: Journal,
    listen: Listener,
    stop: threading.Event,
) -> list[HostReport]:
    """Roll back every host, `options.batch` at a time; a report for each."""
    with ThreadPoolExecutor(options.batch, thread_name_prefix="rollback") as pool:
        return list(
            pool.map(lambda h: rollback_host(h, ssh, options, journal, listen, stop), hosts)
        )


def run_rollback(
    hosts: tuple[Host, ...],
    options: RolloutOptions,
    journal_path: Path,
    accept_new_host_keys: bool,
    listen: Listener,
    notice: Callable[[str], None],
) -> list[HostReport]:
    """Roll back `hosts` under the stop signals, journalled in `journal_path`."""
    journal = Journal(journal_path, {"rollback": [h.name for h in hosts]})
    with stop_on_signals(notice) as stop, ssh_session(accept_new_host_keys) as ssh:
        return rollback_hosts(hosts, ssh, options, journal, listen, stop)
