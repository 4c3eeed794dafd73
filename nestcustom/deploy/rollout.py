"""Roll an image out to hosts: per host preflight -> change -> reboot -> wait -> verify, or roll back.

Each step is journalled before the next starts. At most `batch` hosts change
at once; no new host starts once `max_failures` hosts have failed (counting
the failures of the run a resume continues); a stop request lets running
hosts finish their current step and then stops them at a step boundary,
recorded, so `--resume` can finish. Every path gives back what it took: the
host lock and the FleetLock slot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from nestcustom.deploy import hostkargs
from nestcustom.deploy.decide import may_start, skip_reason
from nestcustom.deploy.hostfailures import (
    STEP_FAILURE,
    HostBusy,
    HostFailed,
    KeyChanged,
    NotBack,
    Stop,
)
from nestcustom.deploy.hostrun import HostRun
from nestcustom.deploy.hoststatus import identity
from nestcustom.deploy.report import KEY_CHANGED, NOT_BACK, HostReport, StepRecord
from nestcustom.deploy.trust import asked, check_trust
from nestcustom.errors import NestcustomError


def deploy_host(run: HostRun) -> HostReport:
    """One host, start to end; the host lock and FleetLock slot are released on every path."""
    try:
        report = _deploy(run)
    finally:
        run.release()
    step = "done" if report.outcome in ("updated", "unchanged", "staged") else report.outcome
    if step in ("done", "failed"):
        run.journal.record(run.host.name, step, "ok", report=report.as_dict())
    else:
        run.journal.record(run.host.name, step, "ok", error=report.error)
    return report


def _deploy(run: HostRun) -> HostReport:
    assert run.target is not None
    started = time.monotonic()
    name, digest = run.host.name, run.target.digest
    changed = False  # staged or rebooted: from here a failure calls for a roll back

    def report(outcome: str, after: str | None, **extra: object) -> HostReport:
        return HostReport(
            name,
            outcome,
            run.before(),
            after,
            tuple(run.steps),
            seconds=time.monotonic() - started,
            trust=run.trust_note,
            **extra,  # type: ignore[arg-type]
        )

    try:
        run.step("preflight", run.preflight)
        run.journal.record(name, "preflight", "noted", before=run.before())
        assert run.facts is not None
        if run.previous and run.previous.image_digest == digest:
            # Already there: untouched, or brought there by the run this one resumes (whose
            # kernel arguments, journalled, must be what it booted with).
            problem = (
                run.kargs and run.resumed and hostkargs.after_boot(run.kargs, run.facts.cmdline)
            )
            if problem:
                raise HostFailed(
                    f"on the target but {problem}",
                    "`nestcustom rollback` boots its previous deployment",
                    failure="kernel-arguments",
                )
            return report("updated" if run.resumed else "unchanged", digest)
        if run.trust is not None and asked(run, run.trust):
            trust = run.trust
            run.step("trust", lambda: check_trust(run, trust))
        run.step("rebase", run.change)
        changed = True
        if not run.options.reboot:
            return report("staged", run.before())
        run.step("reboot", run.reboot)
        run.step("wait", run.wait, stoppable=False)
        run.step("verify", run.verify, stoppable=False)
        return report("updated", digest)
    except Stop as stop:
        where = "while it was rebooting" if str(stop) == "wait" else f"before {stop}"
        return report("interrupted", None, error=f"stopped {where}; finish with --resume")
    except HostBusy as busy:
        return report("busy", None, error=busy.message, hint=busy.hint)
    except NestcustomError as exc:
        # A step may fail after the target was staged (its kernel arguments): undo that too.
        return _failed(run, exc, changed or run.staged_target, report)


def _failed(
    run: HostRun, exc: NestcustomError, changed: bool, report: Callable[..., HostReport]
) -> HostReport:
    error = exc.message.removeprefix(f"{run.host.name}: ")
    failure = (exc.failure if isinstance(exc, HostFailed) else None) or STEP_FAILURE.get(
        run.failed_step or "", "preflight"
    )
    health = exc.health if isinstance(exc, HostFailed) else ()
    if isinstance(exc, NotBack):
        # Nothing can be sent to a host that does not answer; say so, never "rolled back".
        return report(
            "failed", None, error=error, hint=exc.hint, rollback_note=NOT_BACK, failure=failure
        )
    if isinstance(exc, KeyChanged):
        # Nothing more is sent to a host that answers with another key: not even a rollback.
        assert run.target is not None
        return report(
            "failed",
            f"{run.target.digest}?",
            error=error,
            hint=exc.hint,
            rollback_note=KEY_CHANGED,
            failure=failure,
        )
    rolled_back, verified = False, None
    if changed and run.previous is not None:
        rolled_back = True
        run.journal.record(run.host.name, "rollback", "start")
        try:
            verified = run.roll_back()
            detail = "back on the previous deployment" if verified else "not back on it"
            detail = run.rollback_note or detail
            run.journal.record(run.host.name, "rollback", "ok" if verified else "error")
        except NestcustomError as rollback_error:
            verified, detail = False, rollback_error.message
            run.journal.record(run.host.name, "rollback", "error", error=detail)
        run.steps.append(StepRecord("rollback", bool(verified), 0.0, detail))
    try:
        after = identity(run.status().booted)
    except NestcustomError:
        after = identity(run.after.booted) if run.after else None
    return report(
        "failed",
        after,
        error=error,
        hint=exc.hint,
        rolled_back=rolled_back,
        rollback_verified=verified,
        # why a rollback that booted the old deployment is not verified, in the report
        rollback_note=f"NOT verified: {run.rollback_note}" if run.rollback_note else None,
        failure=failure,
        health=health,
    )


def _read_ahead(
    pending: deque[HostRun], batch: int, pool: ThreadPoolExecutor, stopping: bool
) -> None:
    """Read the preflight facts of the next `batch` queued hosts while the running ones
    change and reboot: reading changes nothing on a host (so --batch still bounds the hosts
    being changed), and their turn then starts with the rebase."""
    if stopping:
        return
    for run in list(pending)[:batch]:
        if run.ahead is None and not run.resumed and not run.was_rebooting:
            future = pool.submit(run.read_ahead)
            future.read_at = time.monotonic()  # type: ignore[attr-defined]
            run.ahead = future


def rollout(
    runs: list[HostRun],
    batch: int,
    max_failures: int,
    failures: int,
    listen: Callable[[str, str, str], None],
) -> list[HostReport]:
    """Deploy every run's host, `batch` at a time; a report for every host, always.

    `failures` counts the failures a resumed rollout already had (the budget is shared).
    """
    if not runs:
        return []
    stops, journal = runs[0].stops, runs[0].journal
    reports: dict[str, HostReport] = {}
    pending = deque(runs)
    with (
        ThreadPoolExecutor(max_workers=max(1, batch), thread_name_prefix="deploy") as pool,
        ThreadPoolExecutor(max_workers=max(1, batch), thread_name_prefix="ahead") as ahead,
    ):
        active: dict[Future[HostReport], HostRun] = {}
        while pending or active:
            while (
                pending
                and len(active) < batch
                and may_start(failures, max_failures, stops.soft.is_set())
            ):
                run = pending.popleft()
                active[pool.submit(deploy_host, run)] = run
            if not active:
                break
            _read_ahead(pending, batch, ahead, stops.soft.is_set())
            done, _ = wait(active, return_when=FIRST_COMPLETED)
            for future in done:
                run = active.pop(future)
                report = future.result()
                reports[run.host.name] = report
                failures += report.outcome == "failed"
                listen(run.host.name, report.outcome, "final")
    reason = skip_reason(stops.soft.is_set(), failures)
    for run in pending:
        hint = None if stops.soft.is_set() else "the rollout's failure budget is spent"
        reports[run.host.name] = HostReport(
            run.host.name, "skipped", run.before(), None, error=reason, hint=hint
        )
        journal.record(run.host.name, "skipped", "ok", reason=reason)
    return [reports[r.host.name] for r in runs]
