"""One host's steps of a rollout (preflight, change, reboot, wait, verify, roll back), journalled.

`HostRun` holds the mutable state of one host's deployment; each step is
recorded in the journal before the next starts, and a stop request is honoured
at step boundaries. The remote commands are few on purpose: one gathers every
preflight fact, one takes the host lock and rebases, one reboots, the wait
polls the boot id (and reads the status once it changed), one releases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from nestcustom import proc
from nestcustom.containerfile.updater import ZINCATI_OFF
from nestcustom.deploy import hostkargs, hostlock
from nestcustom.deploy.decide import DriverChoice, preflight_refusal, rebase_argv, rollback_action
from nestcustom.deploy.fleetlock import FleetLock, LockError, zincati_id
from nestcustom.deploy.health import SCRIPT as HEALTH_SCRIPT
from nestcustom.deploy.health import HealthChecks, judge
from nestcustom.deploy.hostfailures import HostBusy, HostFailed, KeyChanged, NotBack, Stop
from nestcustom.deploy.hostpolicy import TrustOptions
from nestcustom.deploy.hoststatus import (
    FACTS_SCRIPT,
    Deployment,
    HostFacts,
    HostStatus,
    identity,
    parse_facts,
    parse_status,
)
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.kargs import KargsPlan
from nestcustom.deploy.report import StepRecord
from nestcustom.deploy.signals import StopFlags
from nestcustom.deploy.ssh import Connection, Failure, SshError, answers
from nestcustom.deploy.target import Target
from nestcustom.errors import NestcustomError

BOOT_ID = "/proc/sys/kernel/random/boot_id"
AHEAD_FRESH = 120.0  # seconds facts read ahead stay good for the host's preflight
PROBE_EVERY = 0.25  # seconds between greeting probes while a host reboots (no ssh process each)
UP_GRACE = 10.0  # seconds a host may keep greeting after its reboot before it is polled anyway
# $1: the boot id before the reboot; the rest: the health checks. Once the boot id changed,
# the status and the health checks come in the same command (one ssh process, one session).
_POLL = (
    f'old=$1; shift; cat {BOOT_ID}; [ "$(cat {BOOT_ID})" = "$old" ] && exit 0\n'
    "echo ==status; rpm-ostree status --json; echo ==cmdline; cat /proc/cmdline; echo ==health\n"
    + HEALTH_SCRIPT
)
_CHANGE = (
    hostlock.TAKE_SCRIPT
    + 'shift 2\n[ "$#" -eq 0 ] || "$@" >&2 || exit $?\necho ==status\nrpm-ostree status --json\n'
)
_ZINCATI = 'mkdir -p "${1%/*}" && printf "[updates]\\nenabled = false\\n" > "$1"'


@dataclass(frozen=True)
class RolloutOptions:
    batch: int = 1
    max_failures: int = 1
    reboot: bool = True
    bypass_driver: bool = False
    disable_zincati: bool = False
    reboot_timeout: float = 600
    fleetlock: FleetLock | None = None
    health: HealthChecks = field(default_factory=HealthChecks)

    @property
    def driver(self) -> DriverChoice:
        return DriverChoice(self.bypass_driver, self.disable_zincati)


@dataclass(frozen=True)
class Owner:
    """The rollout that changes hosts: what its host locks say and may take over."""

    rollout: str
    journal: str
    controller: str
    take_over: tuple[str, ...] = ()

    def lock(self) -> hostlock.LockOwner:
        return hostlock.LockOwner(self.rollout, self.controller, self.journal, time.time())


Listener = Callable[[str, str, str], None]  # host, step, state


@dataclass
class HostRun:
    """Mutable state of one host's deployment (stays inside the deploy stage)."""

    host: Host
    conn: Connection
    target: Target | None  # None when rolling back
    options: RolloutOptions
    journal: Journal
    listen: Listener
    stops: StopFlags
    owner: Owner
    steps: list[StepRecord] = field(default_factory=list)
    facts: HostFacts | None = None
    previous: Deployment | None = None  # where a roll back must bring the host
    after: HostStatus | None = None  # the status read once the host came back
    earlier_before: str | None = None  # a resumed host: what it booted before this rollout
    resumed: bool = False  # an earlier run of this rollout started this host
    was_rebooting: bool = False  # ... and stopped while the host rebooted
    lock_held: bool = False
    slot_held: bool = False
    # sshd greeted at the inventory's address (no ProxyJump or alias): a greeting there = back
    greets_directly: bool = False
    health: list[str] = field(default_factory=list)  # failed health checks after the reboot
    kargs: KargsPlan | None = None  # the kernel arguments the rollout applies (the image's)
    cmdline_before: str = ""  # /proc/cmdline before the rollout, for the rollback's check
    cmdline_after: str | None = None  # /proc/cmdline read with the status after a reboot
    rollback_note: str = ""  # why a rollback that booted the old deployment is not verified
    staged_target: bool = False  # the target is staged (a later failure must undo it)
    failed_step: str | None = None
    # the preflight facts read ahead, while earlier hosts rebooted (rollout.py); read-only
    ahead: Future[HostFacts] | None = None
    trust: TrustOptions | None = None  # prove the target's signature on the host (trust.py)
    ref_override: str | None = None  # the reference the trust step chose to rebase to
    trust_note: str | None = None  # what the trust step proved, for the report

    def step(
        self, name: str, action: Callable[[], str | None], *, stoppable: bool = True
    ) -> str | None:
        """Run one step, journalled. A stop request is honoured before a `stoppable` step; the
        wait for a reboot and the check after it are the end of the reboot, not new steps."""
        if stoppable and self.stops.soft.is_set():
            raise Stop(name)
        self.journal.record(self.host.name, name, "start")
        self.listen(self.host.name, name, "start")
        started = time.monotonic()
        try:
            detail = action()
        except NestcustomError as exc:
            message = exc.message.removeprefix(f"{self.host.name}: ")
            self.failed_step = name
            self.steps.append(StepRecord(name, False, time.monotonic() - started, message))
            self.journal.record(self.host.name, name, "error", error=message)
            self.listen(self.host.name, name, "error")
            raise
        self.steps.append(StepRecord(name, True, time.monotonic() - started, detail or ""))
        self.journal.record(self.host.name, name, "ok", detail=detail or "")
        self.listen(self.host.name, name, "ok")
        return detail

    def before(self) -> str | None:
        """What the host booted before this rollout changed it (across a --resume)."""
        return self.earlier_before if self.resumed else identity(self.previous)

    def status(self) -> HostStatus:
        return parse_status(self.conn.run(["rpm-ostree", "status", "--json"]).stdout)

    # -- the steps ---------------------------------------------------------------

    def gather(self) -> HostFacts:
        """The preflight facts; a host this rollout left rebooting is waited for."""
        deadline = time.monotonic() + self.options.reboot_timeout
        while True:
            try:
                with proc.abandonable():  # reads only: a stop ends it at once
                    result = self.conn.script(FACTS_SCRIPT, name="the preflight")
                break
            except SshError as exc:
                if self.stops.soft.is_set():
                    raise Stop("preflight") from exc  # ended by the stop, nothing changed
                if not (self.was_rebooting and exc.failure is Failure.UNREACHABLE):
                    raise
                if time.monotonic() > deadline:
                    raise HostFailed(
                        f"not back within {self.options.reboot_timeout:.0f} s of the reboot "
                        "the interrupted run started",
                        "check the host's console; it may need a hand",
                    ) from exc
                if self.stops.hard.wait(2.0):
                    raise Stop("preflight") from exc
        return parse_facts(result.stdout)

    def _check_lock(self, text: str) -> None:
        holder = hostlock.parse_owner(text)
        if holder is not None and holder.rollout in (self.owner.rollout, *self.owner.take_over):
            return
        gone = holder is not None and hostlock.controller_gone(
            holder, self.owner.controller, hostlock.pid_alive(holder.controller)
        )
        message, hint = hostlock.describe_busy(holder, text, time.time(), gone)
        raise HostBusy(message, hint)

    def read_ahead(self) -> HostFacts:
        """The preflight facts, read before the host's turn (nothing on the host changes)."""
        return self.gather()

    def _facts(self) -> HostFacts:
        """The facts read ahead when they are fresh (their connection is kept open for the
        change), else read now. A busy host or a running transaction is seen again by the
        atomic lock and by rpm-ostree itself, so reading a little early misses nothing."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None and not self.resumed and not self.was_rebooting:
            try:
                facts, read_at = ahead.result(), getattr(ahead, "read_at", 0.0)
                if time.monotonic() - read_at < AHEAD_FRESH:
                    return facts
            except NestcustomError:
                pass  # read again, now: that failure is the one reported
        return self.gather()

    def preflight(self) -> str:
        facts = self.facts = self._facts()
        if facts.lock:
            self._check_lock(facts.lock)
        # `rollback` (no target) is not held back by an update driver (contract section 2).
        choice = self.options.driver if self.target else DriverChoice(bypass_driver=True)
        refusal = preflight_refusal(facts, self.target.arch if self.target else None, choice)
        if refusal:
            raise HostFailed(refusal.message, refusal.hint)
        self.previous = facts.status.booted
        version = ".".join(map(str, facts.rpm_ostree)) if facts.rpm_ostree else "unknown"
        return f"booted {identity(facts.status.booted)}; rpm-ostree {version}"

    def take_lock_and(self, argv: list[str]) -> HostStatus:
        """Take the host lock, then run `argv` (if any); the status afterwards."""
        self.lock_held = True  # from here a release is due (it only ever removes our own lock)
        ids = " ".join((self.owner.rollout, *self.owner.take_over))
        result = self.conn.script(
            _CHANGE,
            self.owner.lock().line(),
            ids,
            *argv,
            privileged=True,
            check=False,
            timeout=1800,
        )
        if result.returncode == hostlock.BUSY_EXIT and "lock: busy" in result.stdout:
            self.lock_held = False
            self._check_lock(result.stdout.partition("lock: busy ")[2].strip())
        tail = "\n".join(SshError.clean_tail(result.stderr)) or f"exit {result.returncode}"
        if not result.stdout.startswith("lock: taken"):
            # The lock script itself failed (no /var/lib/nestcustom, no mktemp, a full disk):
            # nothing ran after it, and there is no lock of ours to release.
            self.lock_held = False
            raise HostFailed(
                f"taking the host lock {hostlock.LOCK_PATH} failed: {tail}",
                "look at /var/lib/nestcustom on the host (a read-only or full /var?)",
                failure="host-lock",
            )
        if result.returncode != 0:
            raise HostFailed(f"{' '.join(argv[:2]) or 'the command'} failed: {tail}")
        return parse_status(result.stdout.partition("==status\n")[2])

    def change(self) -> str:
        assert self.target is not None and self.facts is not None
        if self.options.disable_zincati and self.facts.status.update_driver:
            # Stops Zincati from moving the host off the image afterwards. A fixed script,
            # the path as its argument: nothing user-made is parsed by a shell.
            self.conn.script(_ZINCATI, ZINCATI_OFF, privileged=True, name="disabling Zincati")
        staged = self.facts.status.staged
        already = staged is not None and staged.image_digest == self.target.digest
        ref = self.ref_override or self.target.ostree_ref  # the trust step's choice, if any
        argv = [] if already else rebase_argv(self.facts, ref, self.options.driver)
        status = self.take_lock_and(argv)
        staged = status.staged
        if staged is None or staged.image_digest != self.target.digest:
            raise HostFailed(
                f"after the rebase the staged deployment is {identity(staged)}, not {self.target.digest}"
            )
        self.staged_target = True
        detail = ("already staged " if already else "staged ") + str(staged.image_digest)
        return detail + (self.apply_kargs() if self.target.kargs is not None else "")

    def apply_kargs(self) -> str:
        """The image's kernel arguments on the staged deployment, recorded for --resume."""
        assert self.target is not None and self.target.kargs is not None and self.facts
        try:
            applied = hostkargs.apply(self.conn, self.target.kargs, self.facts)
        except hostkargs.KargsFailed as exc:
            raise HostFailed(exc.message, exc.hint, failure="kernel-arguments") from exc
        staged = applied.status.staged if applied.status else None
        if applied.status is not None and (
            staged is None or staged.image_digest != self.target.digest
        ):
            raise HostFailed(f"after rpm-ostree kargs the staged deployment is {identity(staged)}")
        self.kargs = plan = applied.plan
        self.journal.record(
            self.host.name, "kargs", "ok", present=list(plan.present),
            absent=list(plan.absent), cmdline=self.facts.cmdline,
        )  # fmt: skip
        return f"; kernel arguments {plan.summary()}" + ("" if plan.options else " (already so)")

    def reboot(self) -> str:
        lock = self.options.fleetlock
        if lock and not self.slot_held:
            try:
                lock.acquire(self.machine_id(), self.options.reboot_timeout, self.stops.soft.wait)
            except LockError as exc:
                if exc.held and self.stops.soft.is_set():
                    raise Stop("reboot") from exc
                raise HostFailed(exc.message, exc.hint, failure="fleetlock") from exc
            self.slot_held = True
            self.journal.record(self.host.name, "slot", "taken")
        self._systemctl_reboot()
        return "reboot requested"

    def machine_id(self) -> str:
        """The id the FleetLock slot is taken under: Zincati's node id for this host, so the
        two share the slot (and Zincati releases it at its next start, as it does its own)."""
        machine = self.facts.machine_id if self.facts else ""
        return zincati_id(machine) or machine or self.host.name

    def _systemctl_reboot(self) -> None:
        where = self.conn.endpoint()
        self.greets_directly = not where.proxied and answers(where.hostname, where.port)
        try:
            self.conn.run(["systemctl", "reboot"], privileged=True, timeout=30)
        except SshError as exc:
            if exc.failure is not Failure.UNREACHABLE:  # a dropped connection is the reboot working
                raise

    def wait(self) -> str:
        assert self.facts is not None
        return self.wait_for_new_boot(self.facts.boot_id)

    def wait_for_new_boot(self, old: str) -> str:
        """Poll until the boot id differs from `old`; the status then is kept in `self.after`.

        Each poll is one SSH connection: the first soon, then backing off gently. Where sshd
        greeted at the host's address before the reboot, a greeting probe every
        PROBE_EVERY seconds gates them: no ssh process while the host is down, none while it
        still greets on its way down (its sshd lives a moment after `systemctl reboot`), and
        a poll as soon as it is back."""
        started = time.monotonic()
        deadline = started + self.options.reboot_timeout
        delay = 0.5
        next_poll = started + delay
        went_down = False
        where = self.conn.endpoint()
        while True:
            pause = PROBE_EVERY if self.greets_directly else next_poll - time.monotonic()
            if self.stops.hard.wait(max(pause, 0.0)):
                raise Stop("wait")
            now = time.monotonic()
            ready = now >= next_poll
            if self.greets_directly:
                up = answers(where.hostname, where.port)
                went_down = went_down or not up
                ready = ready and up and (went_down or now - started > UP_GRACE)
            if ready:
                delay = min(delay * 1.5, 5.0)
                next_poll = time.monotonic() + delay
                try:
                    out = self.conn.script(
                        _POLL,
                        old,
                        *self.options.health.argv(),
                        privileged=True,
                        name="reading the boot id",
                    ).stdout
                    boot, _, rest = out.partition("\n==status\n")
                    rest, _, health = rest.partition("\n==health\n")
                    status, _, cmdline = rest.partition("\n==cmdline\n")
                    if boot.strip() and boot.strip() != old and status:
                        self.after = parse_status(status)
                        self.cmdline_after = cmdline.strip()
                        self.health = judge(self.options.health, health)
                        return f"back with boot id {boot.strip()}"
                except SshError as exc:
                    if exc.failure is Failure.HOST_KEY_CHANGED:
                        raise KeyChanged(
                            f"came back with another host key: {exc.message.partition(': ')[2]}",
                            exc.hint,
                            failure="key-changed",
                        ) from exc
                    if exc.failure is not Failure.UNREACHABLE:
                        raise
            if time.monotonic() > deadline:
                raise NotBack(
                    f"did not come back within {self.options.reboot_timeout:.0f} s of the reboot",
                    "check the host's console; it may need a hand",
                )

    def verify(self) -> str:
        assert self.target is not None
        booted = (self.after or self.status()).booted
        if booted is None or booted.image_digest != self.target.digest:
            raise HostFailed(f"came back on {identity(booted)}, not {self.target.digest}")
        problem = hostkargs.after_boot(self.kargs, self.cmdline_after or "") if self.kargs else None
        if problem:
            raise HostFailed(
                f"on the target but {problem}",
                "rpm-ostree kargs on the host shows the arguments it boots with",
                failure="kernel-arguments",
            )
        if self.health:
            count = len(self.health)
            raise HostFailed(
                f"on the target but not healthy: {self.health[0]}"
                + (f" (and {count - 1} more)" if count > 1 else ""),
                "the health lines say which checks failed; `systemctl status UNIT` on the "
                "host says why",
                failure="unhealthy",
                health=tuple(self.health),
            )
        checks = len(self.options.health.checks)
        return f"booted {booted.image_digest}; system running" + (
            f", {checks} host check(s) passed" if checks else ""
        )

    def roll_back(self) -> bool:
        """Put the host back on its previous deployment; True when verified."""
        assert self.previous is not None
        status = self.status()
        action = rollback_action(status, self.previous.checksum)
        if action == "drop-staged":
            self.conn.run(["rpm-ostree", "cleanup", "-p"], privileged=True)
            status = self.status()
        elif action == "rollback":
            if status.staged is not None:  # rollback refuses to discard a staged deployment
                self.conn.run(["rpm-ostree", "cleanup", "-p"], privileged=True)
            self.conn.run(["rpm-ostree", "rollback"], privileged=True)
            old = self.conn.run(["cat", BOOT_ID]).stdout.strip()
            self._systemctl_reboot()
            self.after = None
            self.wait_for_new_boot(old)
            status = self.after or self.status()
            before = self.facts.cmdline if self.facts else self.cmdline_before
            note = (
                hostkargs.restored(before, self.cmdline_after)
                if before and self.cmdline_after
                else None
            )
            if note:
                self.rollback_note = f"booted the previous deployment, but {note}"
                return False
        booted = status.booted
        return booted is not None and booted.checksum == self.previous.checksum

    def release(self) -> None:
        """Give back the host lock and the FleetLock slot; failures are recorded, not raised."""
        if self.lock_held:
            try:
                self.conn.script(
                    hostlock.RELEASE_SCRIPT, self.owner.rollout, privileged=True, timeout=60
                )
                self.lock_held = False
                self.journal.record(self.host.name, "lock", "released")
            except NestcustomError as exc:
                self.journal.record(self.host.name, "lock", "error", error=exc.message)
        if self.slot_held and self.options.fleetlock:
            try:
                self.options.fleetlock.release(self.machine_id())
                self.slot_held = False
                self.journal.record(self.host.name, "slot", "released")
            except NestcustomError as exc:
                self.journal.record(self.host.name, "slot", "error", error=exc.message)
