"""What the simulation watches while it runs: the held slots in etcd every 100 ms (the
budget is never exceeded: max held <= budget), and the servers' CPU and peak RSS."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from bench.fleet.services import GROUP, Services
from nestcustom.fleet.etcd import Etcd, EtcdUnavailable
from nestcustom.fleet.lockstore import lease_key, semaphore_key


@dataclass
class Slots:
    """Samples of the group's semaphore (its holders) and of the slot leases in etcd."""

    services: Services
    interval: float = 0.1
    samples: int = 0
    missed: int = 0  # samples etcd did not answer (it was down)
    max_held: int = 0
    max_leased: int = 0
    over_budget: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, budget: int) -> None:
        self._thread = threading.Thread(target=self._run, args=(budget,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self, budget: int) -> None:
        etcd = Etcd(self.services.etcd.url, timeout=1.0)
        started = time.monotonic()
        next_at = started
        while not self._stop.is_set():
            try:
                found = etcd.get(semaphore_key(GROUP))
                held = len(json.loads(found.text)["holders"]) if found.version else 0
                leased = len(etcd.keys(lease_key(GROUP, "")))
            except EtcdUnavailable:
                self.missed += 1
            else:
                self.samples += 1
                self.max_held = max(self.max_held, held)
                self.max_leased = max(self.max_leased, leased)
                if held > budget:
                    self.over_budget.append((time.monotonic() - started, held))
            for server in self.services.servers:
                server.sample()
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
