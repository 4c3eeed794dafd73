"""An in-process stand-in for a host, behind the `Connection` interface: fast tests of the
rollout's decisions (what runs, in which order, how many at once, what is reported).

It answers exactly the remote commands `hostrun` sends, following contract section 2
for what rpm-ostree prints; the fleet emulator (tests/universe/fleet) is the real-sshd
version of the same host. Faults are attributes set by the test.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from nestcustom import proc
from nestcustom.deploy import hostlock, hostrun
from nestcustom.deploy.hoststatus import FACTS_SCRIPT
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.ssh import Connection, Failure, SshError, SshOptions

BASE = "a" * 64


CMDLINE = "BOOT_IMAGE=(hd0,gpt3)/ostree/nestos-x/vmlinuz root=UUID=1 rw quiet"


def deployment(checksum: str, digest: str | None, booted: bool, staged: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"id": f"nestos-{checksum}.0", "checksum": checksum}
    d.update(booted=booted, staged=staged)
    if digest:
        d["container-image-reference"] = f"ostree-unverified-registry:r/x@{digest}"
        d["container-image-reference-digest"] = digest
    else:
        d["origin"] = "openEuler:openEuler/x86_64/nestos/stable"
    return d


def result(code: int, out: str = "", err: str = "") -> proc.Result:
    return proc.Result(code, out, err, out.encode())


class FakeHost(Connection):
    """One host: deployments, boot id, lock; counts the commands it was sent."""

    changing: ClassVar[set[str]] = set()  # hosts between their rebase and their release, fleet-wide
    most_changing = 0
    guard = threading.Lock()

    def __init__(self, name: str) -> None:
        super().__init__(Host(name, "127.0.0.1", 9), SshOptions(Path("/nonexistent")))
        self.deployments = [deployment(BASE, None, True, False)]
        self.boot_id = uuid.uuid4().hex
        self.machine_id = uuid.uuid4().hex
        self.down_until = 0.0  # rebooting until then (monotonic)
        self.commands: list[str] = []
        self.lock: str | None = None
        # faults
        self.rebase_fails = ""
        self.lock_fails = False
        self.boots_old = False
        self.key_changes_at_reboot = False
        self.key_changed = False
        self.unhealthy: list[str] = []  # failed units after the next boot
        self.failed_units: list[str] = []
        self.reboot_seconds = 0.2
        self.never_back = False
        self.cmdline = CMDLINE  # /proc/cmdline of the booted deployment
        self.rollback_cmdline: str | None = None  # what the previous deployment boots with

    # -- what the host is ------------------------------------------------------------
    def status_json(self) -> str:
        return json.dumps({"deployments": self.deployments, "transaction": None})

    def booted(self) -> dict[str, Any]:
        return next(d for d in self.deployments if d["booted"])

    def _reachable(self) -> None:
        if self.key_changed:
            raise SshError(self.host, Failure.HOST_KEY_CHANGED, "host key changed: REMOTE HOST")
        if self.never_back or time.monotonic() < self.down_until:
            raise SshError(self.host, Failure.UNREACHABLE, "unreachable: connection refused")

    def _boot(self) -> None:
        staged = [d for d in self.deployments if d["staged"]]
        rest = [d for d in self.deployments if not d["staged"]]
        if staged and not self.boots_old:
            staged[0]["staged"] = False
            rest.insert(0, staged[0])
        for d in rest:
            d["booted"] = False
        rest[0]["booted"] = True
        self.deployments = rest[:2]
        self.boot_id = uuid.uuid4().hex
        self.failed_units = list(self.unhealthy)
        self.key_changed = self.key_changes_at_reboot

    # -- the Connection interface ------------------------------------------------------
    def run(
        self, command: Any, *, privileged: bool = False, check: bool = True, timeout: float = 600
    ) -> proc.Result:
        words = list(command)
        if words[:2] == ["sh", "-c"]:
            return self._script(words[2], words[4:])
        self._reachable()
        self.commands.append(" ".join(words))
        if words == ["rpm-ostree", "status", "--json"]:
            return result(0, self.status_json())
        if words == ["systemctl", "reboot"]:
            self.down_until = time.monotonic() + self.reboot_seconds
            self._boot()
            return result(0)
        if words == ["rpm-ostree", "cleanup", "-p"]:
            self.deployments = [d for d in self.deployments if not d["staged"]]
            return result(0)
        if words == ["rpm-ostree", "rollback"]:
            booted = self.booted()
            other = next(d for d in self.deployments if d is not booted)
            self.deployments = [other, booted]
            staged_next = dict(other, staged=True)
            self.deployments = [staged_next, booted]
            if self.rollback_cmdline is not None:
                self.cmdline = self.rollback_cmdline
            return result(0)
        if words[0] == "cat":
            return result(0, self.boot_id + "\n")
        raise AssertionError(f"unexpected command {words}")

    def script(self, script: str, *args: str, **_: Any) -> proc.Result:
        return self._script(script, list(args))

    def _script(self, script: str, args: list[str]) -> proc.Result:
        self._reachable()
        name = {
            FACTS_SCRIPT: "preflight",
            hostrun._CHANGE: "change",
            hostrun._POLL: "poll",
            hostlock.RELEASE_SCRIPT: "release",
        }.get(script, "script")
        self.commands.append(name)
        if name == "preflight":
            lock = self.lock or ""
            return result(
                0,
                f"==status\n{self.status_json()}\n==arch\nx86_64\n==machine-id\n{self.machine_id}\n"
                f"==boot-id\n{self.boot_id}\n==rpm-ostree\n Version: '2022.16'\n==lock\n{lock}\n"
                f"==cmdline\n{self.cmdline}\n==kargs-d\n==end\n",
            )
        if name == "change":
            if self.lock_fails:
                return result(
                    1,
                    "",
                    "mkdir: cannot create directory '/var/lib/nestcustom': Read-only file system",
                )
            self.lock = args[0]
            with FakeHost.guard:
                FakeHost.changing.add(self.host.name)
                FakeHost.most_changing = max(FakeHost.most_changing, len(FakeHost.changing))
            argv = args[2:]
            if argv and self.rebase_fails:
                return result(1, "lock: taken\n", f"error: {self.rebase_fails}")
            if argv:
                digest = argv[-1].rpartition("@")[2]
                self.deployments = [
                    deployment(digest[7:], digest, False, True),
                    *(d for d in self.deployments if not d["staged"]),
                ]
            return result(0, f"lock: taken\n==status\n{self.status_json()}")
        if name == "poll":
            return result(0, self._poll(args))
        if name == "release":
            self.lock = None
            with FakeHost.guard:
                FakeHost.changing.discard(self.host.name)
            return result(0)
        raise AssertionError(f"unexpected script {script[:60]!r}")

    def _poll(self, args: list[str]) -> str:
        if args[0] == self.boot_id:
            return self.boot_id + "\n"
        state = "degraded" if self.failed_units else "running"
        records = [(0 if state == "running" else 1, state + "\n")]
        records.append((0, "".join(f"{u} loaded failed failed\n" for u in self.failed_units)))
        rest = args[1:]
        while rest:
            kind, target = rest[0], rest[1]
            rest = rest[2:]
            if kind == "unit":
                active = "failed" if target in self.failed_units else "active"
                records.append(
                    (0, f"ActiveState={active}\nSubState={active}\nType=simple\nResult=success\n")
                )
            else:
                raise AssertionError(f"the fake host runs no {kind} check")
        health = "".join(
            f"==result {code}\n{base64.b64encode(text.encode()).decode()}\n"
            for code, text in records
        )
        return (
            f"{self.boot_id}\n==status\n{self.status_json()}\n==cmdline\n{self.cmdline}\n"
            f"==health\n{health}"
        )

    def close(self) -> None:
        return None
