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
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from nestcustom.deploy.fleetlock import FleetLock
from nestcustom.deploy.hoststatus import Deployment, HostStatus, parse_status
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal, Replay
from nestcustom.deploy.ssh import Connection, Failure, SshError, SshOptions
from nestcustom.errors import NestcustomError

ZINCATI_OFF = "/etc/zincati/config.d/90-disable-auto-updates.toml"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class Target:
    pinned: str  # REPO@sha256:...
    digest: str
    arch: str | None
    signed: bool = False

    @property
    def ostree_ref(self) -> str:
        if self.signed:
            return f"ostree-image-signed:docker://{self.pinned}"
        return f"ostree-unverified-registry:{self.pinned}"


@dataclass(frozen=True)
class RolloutOptions:
    batch: int = 1
    max_failures: int = 1
    reboot: bool = True
    bypass_driver: bool = False
    disable_zincati: bool = False
    reboot_timeout: float = 600
    fleetlock: FleetLock | None = None


@dataclass(frozen=True)
class StepRecord:
    step: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class HostReport:
    host: str
    outcome: str  # updated | unchanged | staged | failed | skipped | interrupted
    before: str | None  # what was booted: digest, or the ostree origin
    after: str | None
    steps: tuple[StepRecord, ...] = ()
    error: str | None = None
    hint: str | None = None
    rolled_back: bool = False
    rollback_verified: bool | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("updated", "unchanged", "staged")


class Stop(Exception):
    """The operator asked to stop: the host stays as its journal says."""


class HostFailed(NestcustomError):
    pass


Listener = Callable[[str, str, str], None]  # host, step, state


def _identity(deployment: Deployment | None) -> str | None:
    if deployment is None:
        return None
    return deployment.image_digest or deployment.origin or deployment.checksum


@dataclass
class _HostRun:
    """Mutable state of one host's deployment (stays inside this module)."""

    host: Host
    conn: Connection
    target: Target | None  # None when rolling back
    options: RolloutOptions
    journal: Journal
    listen: Listener
    stop: threading.Event
    steps: list[StepRecord] = field(default_factory=list)
    previous: Deployment | None = None
    machine_id: str = ""
    resumed: bool = False  # an earlier run of this rollout rebased this host
    resumed_before: str | None = None  # what the host booted before that run changed it

    def step(self, name: str, action: Callable[[], str | None]) -> str | None:
        if self.stop.is_set():
            raise Stop(name)
        self.journal.record(self.host.name, name, "start")
        self.listen(self.host.name, name, "start")
        started = time.monotonic()
        try:
            detail = action()
        except NestcustomError as exc:
            self.steps.append(StepRecord(name, False, time.monotonic() - started, exc.message))
            self.journal.record(self.host.name, name, "error", error=exc.message)
            self.listen(self.host.name, name, "error")
            raise
        self.steps.append(StepRecord(name, True, time.monotonic() - started, detail or ""))
        self.journal.record(self.host.name, name, "ok", detail=detail or "")
        self.listen(self.host.name, name, "ok")
        return detail

    def before(self) -> str | None:
        """What the host booted before this rollout changed it (across a --resume)."""
        return self.resumed_before if self.resumed else _identity(self.previous)

    def status(self) -> HostStatus:
        return parse_status(self.conn.run(["rpm-ostree", "status", "--json"]).stdout)

    def boot_id(self) -> str:
        return self.conn.run(["cat", BOOT_ID]).stdout.strip()

    # -- the steps ---------------------------------------------------------------

    def preflight(self) -> str:
        status = self.status()
        if status.transaction:
            raise HostFailed(
                "an rpm-ostree transaction is running", "wait for it to finish, then re-run"
            )
        self.previous = status.booted
        arch = self.conn.run(["uname", "-m"]).stdout.strip()
        if self.target and self.target.arch and arch != self.target.arch:
            raise HostFailed(
                f"the host is {arch}, the image is for {self.target.arch}",
                "build on a base of the host's stream and architecture",
            )
        self.machine_id = (
            self.conn.run(["cat", "/etc/machine-id"], check=False).stdout.strip() or self.host.name
        )
        if status.update_driver and not (
            self.options.bypass_driver or self.options.disable_zincati
        ):
            raise HostFailed(
                f"updates on this host are driven by {status.update_driver}",
                "pass --disable-zincati (turns Zincati's updates off, then rebases) or --bypass-driver",
            )
        if status.update_driver and self.options.disable_zincati:
            # Zincati stays registered as the driver, so the rebase still needs --bypass-driver;
            # this stops Zincati from moving the host off the image afterwards.
            # A fixed script with the path as a positional argument: nothing user-made is parsed.
            self.conn.run(
                [
                    "sh",
                    "-c",
                    'mkdir -p "${1%/*}" && printf "[updates]\\nenabled = false\\n" > "$1"',
                    "sh",
                    ZINCATI_OFF,
                ],
                privileged=True,
            )
        return f"booted {_identity(status.booted)}"

    def rebase(self) -> str:
        assert self.target is not None
        status = self.status()
        if status.staged and status.staged.image_digest == self.target.digest:
            return "already staged"  # a resumed rollout
        command = ["rpm-ostree", "rebase"]
        if self.options.bypass_driver or self.options.disable_zincati:
            command.append("--bypass-driver")
        self.conn.run([*command, self.target.ostree_ref], privileged=True, timeout=1800)
        staged = self.status().staged
        if staged is None or staged.image_digest != self.target.digest:
            raise HostFailed(
                f"after the rebase the staged deployment is {_identity(staged)}, not {self.target.digest}"
            )
        return f"staged {staged.image_digest}"

    def reboot(self) -> str:
        old = self.boot_id()
        if self.options.fleetlock:
            self.options.fleetlock.acquire(self.machine_id, timeout=self.options.reboot_timeout)
        try:
            self.conn.run(["systemctl", "reboot"], privileged=True, timeout=30)
        except SshError as exc:
            if exc.failure is not Failure.UNREACHABLE:  # a dropped connection is the reboot working
                raise
        return self.wait_for_reboot(old)

    def wait_for_reboot(self, old_boot_id: str) -> str:
        deadline = time.monotonic() + self.options.reboot_timeout
        # Start polling soon and back off gently: a reboot takes seconds to minutes,
        # and each attempt is one cheap SSH connection.
        delay = 0.5
        while True:
            time.sleep(delay)
            try:
                now = self.boot_id()
                if now and now != old_boot_id:
                    return f"back with boot id {now}"
            except SshError as exc:
                if exc.failure is not Failure.UNREACHABLE:
                    raise
            if time.monotonic() > deadline:
                raise HostFailed(
                    f"did not come back within {self.options.reboot_timeout:.0f} s of the reboot",
                    "check the host's console; it may need a hand",
                )
            delay = min(delay * 1.5, 5.0)

    def verify(self) -> str:
        assert self.target is not None
        booted = self.status().booted
        if booted is None or booted.image_digest != self.target.digest:
            raise HostFailed(f"came back on {_identity(booted)}, not {self.target.digest}")
        if self.options.fleetlock:
            self.options.fleetlock.release(self.machine_id)
        return f"booted {booted.image_digest}"

    def is_previous(self, deployment: Deployment | None) -> bool:
        return (
            deployment is not None
            and self.previous is not None
            and deployment.checksum == self.previous.checksum
        )

    def roll_back(self) -> bool:
        """Put the host back on its previous deployment; True when verified."""
        status = self.status()
        if self.is_previous(status.booted):
            # Never rebooted, or came back on the old deployment: `rollback` would now
            # switch to the new one. Drop what is staged instead.
            if status.staged:
                self.conn.run(["rpm-ostree", "cleanup", "-p"], privileged=True)
            return self.is_previous(self.status().booted)
        old = self.boot_id()
        self.conn.run(["rpm-ostree", "rollback"], privileged=True)
        try:
            self.conn.run(["systemctl", "reboot"], privileged=True, timeout=30)
        except SshError as exc:
            if exc.failure is not Failure.UNREACHABLE:
                raise
        self.wait_for_reboot(old)
        if self.options.fleetlock:
            self.options.fleetlock.release(self.machine_id)
        return self.is_previous(self.status().booted)


def deploy_host(run: _HostRun) -> HostReport:
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


def _failed(run: _HostRun, exc: NestcustomError, changed: bool, started: float) -> HostReport:
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
        after = _identity(run.status().booted)
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
                run = _HostRun(host, Connection(host, ssh), target, options, journal, listen, stop)
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


def rollback_host(
    host: Host,
    ssh: SshOptions,
    options: RolloutOptions,
    journal: Journal,
    listen: Listener,
    stop: threading.Event,
) -> HostReport:
    """`rpm-ostree rollback`, reboot, and check the host booted the deployment it rolled back to."""
    run = _HostRun(host, Connection(host, ssh), None, options, journal, listen, stop)
    started = time.monotonic()
    before: str | None = None
    try:
        status = run.status()
        before = _identity(status.booted)
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
                raise HostFailed(f"came back on {_identity(booted)}, not {_identity(run.previous)}")
            return f"booted {_identity(booted)}"

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
    after = _identity(run.previous)
    journal.record(host.name, "done", "ok", outcome="rolled back", before=before, after=after)
    return HostReport(
        host.name, "updated", before, after, tuple(run.steps), seconds=time.monotonic() - started
    )
