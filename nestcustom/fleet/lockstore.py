"""The reboot budget in etcd: FleetLock slots with leases, host reports, halted rings.

A slot is taken and released in one etcd transaction that compares the
semaphore's version, so any number of servers against one etcd keep one budget
(a lost race is tried again; an etcd that does not answer grants nothing: fail
closed). Each holder also gets a key under an etcd lease: a host that dies
holding a slot loses it when the lease ends (`slot_ttl`), which airlock, whose
semaphore layout this keeps, cannot do.

Hosts may say more than Zincati does in their steady-state call (`digest`,
`ring`, `health`): that is their report for `nestcustom fleet status`, and a
`rolled-back` health counts against the ring; past `halt_after` rollbacks
within `halt_window` the ring gets no more slots until an operator acts.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote

from nestcustom.fleet.etcd import Etcd
from nestcustom.fleet.semaphore import Semaphore

ATTEMPTS = 12  # transactions lost to another server before the request fails


def _back_off() -> None:
    """After a lost transaction: a few jittered milliseconds, so racing servers spread out."""
    time.sleep(random.uniform(0.002, 0.02))  # noqa: S311 - timing, not security


class UnknownGroup(Exception):
    """The server is not configured for this group."""


class RingHalted(Exception):
    """Too many hosts of the ring rolled back lately: no more slots for it."""


class Contended(Exception):
    """Other servers kept winning the semaphore's transaction."""


@dataclass(frozen=True)
class Budget:
    slots: dict[str, int]  # group -> reboot slots
    slot_ttl: int = 7200  # seconds a slot outlives a host that never released it
    halt_after: int = 0  # rollbacks of a ring within halt_window that halt it (0: never)
    halt_window: int = 3600


def semaphore_key(group: str) -> str:
    return f"com.coreos.airlock/groups/{quote(group, safe='')}/v1/semaphore"


def lease_key(group: str, holder: str) -> str:
    return f"nestcustom/groups/{quote(group, safe='')}/v1/held/{quote(holder, safe='')}"


def host_key(holder: str) -> str:
    return f"nestcustom/hosts/{quote(holder, safe='')}"


def rollback_prefix(ring: str) -> str:
    return f"nestcustom/rings/{quote(ring, safe='')}/rollbacks/"


HALTED_PREFIX = "nestcustom/rings/"
HALTED_SUFFIX = "/halted"


def halted_key(ring: str) -> str:
    """Why the ring is halted (JSON), under a lease of the halt window: `fleet status` says
    it, and it goes when the rollbacks that halted the ring age out."""
    return f"{HALTED_PREFIX}{quote(ring, safe='')}{HALTED_SUFFIX}"


@dataclass(frozen=True)
class LockStore:
    etcd: Etcd
    budget: Budget

    def _read(self, group: str) -> tuple[Semaphore, int]:
        if group not in self.budget.slots:
            raise UnknownGroup(group)
        found = self.etcd.get(semaphore_key(group))
        if not found.version:
            return Semaphore(self.budget.slots[group]), 0
        stored = Semaphore.parse(found.text)
        # The configured size wins; holders whose lease ended are gone.
        live = set(self.etcd.keys(lease_key(group, "")).keys())
        holders = tuple(h for h in stored.holders if lease_key(group, h) in live)
        return Semaphore(self.budget.slots[group], holders), found.version

    def pre_reboot(self, group: str, holder: str, ring: str | None = None) -> Semaphore:
        """Take (or keep) `holder`'s slot; AllHeld, RingHalted or UnknownGroup if not."""
        if ring and self.halted(ring):
            raise RingHalted(ring)
        for _ in range(ATTEMPTS):
            current, version = self._read(group)
            taken = current.lock(holder)  # raises AllHeld
            lease = self.etcd.grant(self.budget.slot_ttl)
            report = {"event": "rebooting", "group": group, "ring": ring, "time": time.time()}
            if self.etcd.commit_if_version(
                semaphore_key(group),
                version,
                {
                    semaphore_key(group): (taken.text(), 0),
                    lease_key(group, holder): (str(int(time.time())), lease),
                    host_key(holder): (json.dumps(report), 0),
                },
            ):
                return taken
            _back_off()
        raise Contended(group)

    def steady_state(self, group: str, holder: str, report: dict[str, str]) -> Semaphore:
        """Release `holder`'s slot if it holds one, and keep what it reports of itself."""
        for _ in range(ATTEMPTS):
            current, version = self._read(group)
            released = current.unlock(holder)
            record = {"event": "steady", "group": group, **report, "time": time.time()}
            puts = {
                semaphore_key(group): (released.text(), 0),
                host_key(holder): (json.dumps(record), 0),
            }
            if report.get("health") == "rolled-back" and report.get("ring"):
                window = self.etcd.grant(self.budget.halt_window)
                puts[rollback_prefix(report["ring"]) + quote(holder, safe="")] = ("1", window)
            if self.etcd.commit_if_version(
                semaphore_key(group), version, puts, (lease_key(group, holder),)
            ):
                if report.get("health") == "rolled-back" and report.get("ring"):
                    self._note_halt(report["ring"])
                return released
            _back_off()
        raise Contended(group)

    def _note_halt(self, ring: str) -> None:
        """Once a ring's rollbacks reach `halt_after`, say so where `fleet status` reads."""
        if not self.budget.halt_after:
            return
        rolled_back = self.etcd.keys(rollback_prefix(ring))
        if len(rolled_back) < self.budget.halt_after:
            return
        why = {
            "ring": ring,
            "rollbacks": len(rolled_back),
            "halt_after": self.budget.halt_after,
            "window": self.budget.halt_window,
            "hosts": sorted(unquote(k.rpartition("/")[2]) for k in rolled_back),
            "time": time.time(),
        }
        lease = self.etcd.grant(self.budget.halt_window)
        self.etcd.put(halted_key(ring), json.dumps(why), lease)

    def halts(self) -> dict[str, dict[str, object]]:
        """Every halted ring's reason, by ring."""
        found = {}
        for key, value in self.etcd.keys(HALTED_PREFIX).items():
            ring, _, rest = key.removeprefix(HALTED_PREFIX).partition("/")
            if "/" + rest == HALTED_SUFFIX:  # not a rollback of a host named "halted"
                found[unquote(ring)] = json.loads(value)
        return found

    def halted(self, ring: str) -> bool:
        if not self.budget.halt_after:
            return False
        return len(self.etcd.keys(rollback_prefix(ring))) >= self.budget.halt_after

    def hosts(self) -> dict[str, dict[str, object]]:
        """Every host's last report, by its id (as the host gave it: keys hold it escaped)."""
        return {
            unquote(key.rpartition("/")[2]): json.loads(value)
            for key, value in self.etcd.keys("nestcustom/hosts/").items()
        }
