"""Boot hosts back into their previous deployment (`nestcustom rollback`), verified.

A rollback changes a host, so it takes the host lock like a rollout does: it
never runs on a host a rollout holds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nestcustom.deploy.hostfailures import HostBusy, HostFailed, Stop
from nestcustom.deploy.hostlock import this_controller
from nestcustom.deploy.hostrun import HostRun, Listener, Owner, RolloutOptions
from nestcustom.deploy.hoststatus import identity
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.report import HostReport, RolloutResult
from nestcustom.deploy.signals import StopFlags, stop_on_signals
from nestcustom.deploy.ssh import Connection, SshOptions, ssh_session
from nestcustom.errors import NestcustomError


def rollback_host(run: HostRun) -> HostReport:
    """`rpm-ostree rollback`, reboot, and check the host booted the deployment it rolled back to."""
    started = time.monotonic()
    name = run.host.name
    before: str | None = None

    def report(outcome: str, after: str | None, **extra: object) -> HostReport:
        return HostReport(
            name,
            outcome,
            before,
            after,
            tuple(run.steps),
            seconds=time.monotonic() - started,
            **extra,  # type: ignore[arg-type]
        )

    try:
        run.step("preflight", run.preflight)
        assert run.facts is not None
        status = run.facts.status
        before = identity(status.booted)
        if status.rollback is None:
            raise HostFailed("no rollback deployment on this host", "nothing to go back to")
        run.previous = status.rollback  # where the host must end up
        # A staged deployment is dropped first: rollback does not discard it quietly.
        argv = ["sh", "-c", '[ -z "$1" ] || rpm-ostree cleanup -p; rpm-ostree rollback', "sh"]
        run.step(
            "rollback", lambda: (run.take_lock_and([*argv, "1" if status.staged else ""]), "")[1]
        )
        run.step("reboot", run.reboot)
        run.step("wait", run.wait, stoppable=False)

        def verify() -> str:
            booted = (run.after or run.status()).booted
            if booted is None or run.previous is None or booted.checksum != run.previous.checksum:
                raise HostFailed(f"came back on {identity(booted)}, not {identity(run.previous)}")
            return f"booted {identity(booted)}"

        run.step("verify", verify, stoppable=False)
        return report("rolled back", identity(run.previous))
    except Stop as stopped:
        return report("interrupted", None, error=f"stopped before {stopped}")
    except HostBusy as busy:
        return report("busy", None, error=busy.message, hint=busy.hint)
    except NestcustomError as exc:
        return report("failed", None, error=exc.message.removeprefix(f"{name}: "), hint=exc.hint)


def _one(run: HostRun) -> HostReport:
    try:
        report = rollback_host(run)
    finally:
        run.release()
    step = {"rolled back": "done", "failed": "failed"}.get(report.outcome, report.outcome)
    run.journal.record(run.host.name, step, "ok", report=report.as_dict())
    return report


def rollback_hosts(
    hosts: tuple[Host, ...],
    ssh: SshOptions,
    options: RolloutOptions,
    journal: Journal,
    listen: Listener,
    stops: StopFlags,
    owner: Owner,
) -> list[HostReport]:
    """Roll back every host, `options.batch` at a time; a report for each."""
    runs = [
        HostRun(h, Connection(h, ssh), None, options, journal, listen, stops, owner) for h in hosts
    ]
    with ThreadPoolExecutor(options.batch, thread_name_prefix="rollback") as pool:
        return list(pool.map(_one, runs))


def run_rollback(
    hosts: tuple[Host, ...],
    options: RolloutOptions,
    journal_path: Path,
    accept_new_host_keys: bool,
    listen: Listener,
    notice: Callable[[str], None],
) -> RolloutResult:
    """Roll back `hosts` under the stop signals, journalled in `journal_path`."""
    rollout_id = uuid.uuid4().hex
    owner = Owner(rollout_id, str(journal_path.resolve()), this_controller())
    journal = Journal.create(
        journal_path, "rollback", {"id": rollout_id, "hosts": [h.name for h in hosts]}
    )
    try:
        with stop_on_signals(notice) as stops, ssh_session(accept_new_host_keys) as ssh:
            reports = rollback_hosts(hosts, ssh, options, journal, listen, stops, owner)
        return RolloutResult(tuple(reports), journal_path, stops.stopped_by)
    finally:
        journal.close()
