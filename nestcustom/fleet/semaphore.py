"""A group's reboot semaphore, as airlock keeps it in etcd (so airlock's tools read ours).

`{"total_slots": N, "holders": [sorted ids]}`; taking a slot is re-entrant (an id
that holds one holds it again), releasing one an id does not hold is no error
(coreos/airlock internal/lock/semaphore.go: RecursiveLock, UnlockIfHeld).
"""

from __future__ import annotations

import json
from dataclasses import dataclass


class AllHeld(Exception):
    """Every slot is held: the client asks again later."""


@dataclass(frozen=True)
class Semaphore:
    total_slots: int
    holders: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Semaphore:
        data = json.loads(text)
        return cls(int(data["total_slots"]), tuple(sorted(str(h) for h in data["holders"])))

    def text(self) -> str:
        return json.dumps({"total_slots": self.total_slots, "holders": list(self.holders)})

    def lock(self, holder: str) -> Semaphore:
        """With `holder` holding a slot (it may already); AllHeld when none is free."""
        if holder in self.holders:
            return self
        if len(self.holders) >= self.total_slots:
            raise AllHeld(f"all {self.total_slots} semaphore slots currently locked")
        return Semaphore(self.total_slots, tuple(sorted((*self.holders, holder))))

    def unlock(self, holder: str) -> Semaphore:
        return Semaphore(self.total_slots, tuple(h for h in self.holders if h != holder))
