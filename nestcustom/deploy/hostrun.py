"""One host's steps of a rollout (preflight, rebase, reboot, verify, roll back), journalled.

`HostRun` holds the mutable state of one host's deployment; each step is
recorded in the journal before the next starts, and a stop request is honoured
at step boundaries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nestcustom.deploy.fleetlock import FleetLock
from nestcustom.deploy.hoststatus import Deployment, HostStatus, parse_status
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.report import StepRecord
from nestcustom.deploy.ssh import Connection, Failure, SshError
from nestcustom.deploy.target import Target
from nestcustom.errors import NestcustomError

ZINCATI_OFF = "/etc/zincati/config.d/90-disable-auto-updates.toml"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class RolloutOptions:
    batch: int = 1
    max_failures: int = 1
    reboot: bool = True
    bypass_driver: bool = False
    disable_zincati: bool = False
    reboot_timeout: float = 600
    fleetlock: FleetLock | None = None


class Stop(Exception):
    """The operator asked to stop: the host stays as its journal says."""


class HostFailed(NestcustomError):
    pass


Listener = Callable[[str, str, str], None]  # host, step, state


def identity(deployment: Deployment | None) -> str | None:
    if deployment is None:
        return None
    return deployment.image_digest or deployment.origin or deployment.checksum


@dataclass
class HostRun:
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
        return self.resumed_before if self.resumed else identity(self.previous)

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
        return f"booted {identity(status.booted)}"

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
                f"after the rebase the staged deployment is {identity(staged)}, not {self.target.digest}"
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
            raise HostFailed(f"came back on {identity(booted)}, not {self.target.digest}")
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
