"""Roll an image out to hosts: per host preflight -> rebase -> reboot -> verify, or roll back.

Each step is journalled before the next starts. At most `batch` hosts change
at once; no new host starts once `max_failures` hosts have failed; a stop
request (Ctrl-C, hang-up) lets running hosts finish their current step and
then stops them at a step boundary, recorded, so `--resume` can finish.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from nestcustom.deploy.hostrun import HostRun, Listener, RolloutOptions, Stop, identity
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal, Replay
from nestcustom.deploy.report import HostReport, StepRecord
from nestcustom.deploy.ssh import Connection, SshOptions
from nestcustom.deploy.target import Target
from nestcustom.errors import NestcustomError


def deploy_host(run: HostRun) -> HostReport:
    assert run.target is not None
    started = time.monotonic()
    name = run.host.name
    changed = False  # staged or rebooted: from here a failure calls for a roll back
    try:
        run.step("preflight", run.preflight)
        before = run.before()
        run.journal.record(name, "preflight", "noted", before=before)
        if run.previous and run.previous.image_digest == run.target.digest:
            # Already there: untouched, or finished by the run this one resumes.
            outcome = "updated" if run.resumed else "unchanged"
            after = run.target.digest
            run.journal.record(name, "done", "ok", outcome=outcome, before=before, after=after)
            return HostReport(
                name, outcome, before, after, tuple(run.steps), seconds=time.monotonic() - started
            )
        run.step("rebase", run.rebase)
        changed = True
        if not run.options.reboot:
            run.journal.record(name, "done", "ok", outcome="staged", before=before, after=before)
            return HostReport(
                name, "staged", before, before, tuple(run.steps), seconds=time.monotonic() - started
            )
        run.step("reboot", run.reboot)
        run.step("verify", run.verify)
    except Stop as stop:
        run.journal.record(name, "interrupted", "ok", before_step=str(stop))
        return HostReport(
            name,
            "interrupted",
            run.before(),
            None,
            tuple(run.steps),
            error=f"stopped before {stop}; finish with --resume",
            seconds=time.monotonic() - started,
        )
    except NestcustomError as exc:
        report = _failed(run, exc, changed, started)
        run.journal.record(
            name,
            "failed",
            "ok",
            error=report.error,
            rolled_back=report.rolled_back,
            rollback_verified=report.rollback_verified,
        )
        return report
    after = run.target.digest
    run.journal.record(name, "done", "ok", outcome="updated", before=run.before(), after=after)
    return HostReport(
        name,
        "updated",
        run.before(),
        after,
        tuple(run.steps),
        seconds=time.monotonic() - started,
    )


def _failed(run: HostRun, exc: NestcustomError, changed: bool, started: float) -> HostReport:
    error = exc.message.removeprefix(f"{run.host.name}: ")
    rolled_back = False
    verified: bool | None = None
    if changed and run.previous is not None:
        try:
            rolled_back = True
            run.journal.record(run.host.name, "rollback", "start")
            verified = run.roll_back()
            run.journal.record(
                run.host.name, "rollback", "ok" if verified else "error", verified=verified
            )
            run.steps.append(
                StepRecord(
                    "rollback",
                    verified,
                    0.0,
                    "back on the previous deployment"
                    if verified
                    else "not back on the previous deployment",
                )
            )
        except NestcustomError as rollback_error:
            verified = False
            run.steps.append(StepRecord("rollback", False, 0.0, rollback_error.message))
            run.journal.record(run.host.name, "rollback", "error", error=rollback_error.message)
    try:
        after = identity(run.status().booted)
    except NestcustomError:
        after = None
    return HostReport(
        run.host.name,
        "failed",
        run.before(),
        after,
        tuple(run.steps),
        error=error,
        hint=exc.hint,
        rolled_back=rolled_back,
        rollback_verified=verified,
        seconds=time.monotonic() - started,
    )


def rollout(
    hosts: tuple[Host, ...],
    target: Target,
    options: RolloutOptions,
    journal: Journal,
    ssh: SshOptions,
    listen: Listener,
    stop: threading.Event,
    replay: Replay | None = None,
) -> list[HostReport]:
    """Deploy to every host, `options.batch` at a time; a report for every host, always.

    With `replay` (a resumed rollout), hosts the earlier run rebased are reported
    against what they booted before it.
    """
    reports: dict[str, HostReport] = {}
    pending = deque(hosts)
    failures = 0
    with ThreadPoolExecutor(max_workers=max(1, options.batch), thread_name_prefix="deploy") as pool:
        active: dict[Future[HostReport], Host] = {}
        while pending or active:
            while (
                pending
                and len(active) < options.batch
                and failures < options.max_failures
                and not stop.is_set()
            ):
                host = pending.popleft()
                run = HostRun(host, Connection(host, ssh), target, options, journal, listen, stop)
                if replay is not None and host.name in replay.rebased:
                    run.resumed, run.resumed_before = True, replay.before.get(host.name)
                active[pool.submit(deploy_host, run)] = host
            if not active:
                break
            done, _ = wait(active, return_when=FIRST_COMPLETED)
            for future in done:
                host = active.pop(future)
                report = future.result()
                reports[host.name] = report
                failures += report.outcome == "failed"
                listen(host.name, report.outcome, "final")
    reason = (
        "stopped by the operator"
        if stop.is_set()
        else f"{failures} host(s) failed (--max-failures)"
    )
    for host in pending:
        reports[host.name] = HostReport(
            host.name, "skipped", None, None, error=f"not started: {reason}"
        )
        journal.record(host.name, "skipped", "ok", reason=reason)
    return [reports[h.name] for h in hosts]
