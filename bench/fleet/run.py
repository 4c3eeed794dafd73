"""One simulated rollout: v2 promoted to the ring, N hosts updating under the budget, the
scenario's event (an etcd restart, a server killed) when a share of the hosts is done,
and what came of it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fleet.hosts import Fleet, Host, Plan, make_hosts, render_image
from bench.fleet.services import RING, Services, running
from bench.fleet.watch import Slots
from nestcustom.fleet.etcd import Etcd, EtcdUnavailable
from nestcustom.fleet.lockstore import rollback_prefix

SCENARIOS = ("none", "etcd-restart", "kill-server")


@dataclass(frozen=True)
class Settings:
    hosts: int = 1000
    budget: int = 20
    reboot_seconds: float = 10.0
    servers: int = 2
    bad_share: float = 0.0  # hosts whose health check fails on the new image
    halt_after: int = 0  # the servers' --halt-after
    retry: int = 30  # the recipe's updates: retry (seconds between pre-reboot asks)
    window: float = 60.0  # update timers fire within this many seconds of the promotion
    scenario: str = "none"
    event_at: float = 0.3  # the share of hosts done when the scenario's event happens
    outage: float = 2.0  # seconds etcd stays down in etcd-restart
    seed: int = 1

    @property
    def ideal_seconds(self) -> float:
        return self.hosts / self.budget * self.reboot_seconds

    def plan(self) -> Plan:
        pick = random.Random(self.seed)
        bad = pick.sample(range(self.hosts), round(self.hosts * self.bad_share))
        delays = tuple(pick.uniform(0, self.window) for _ in range(self.hosts))
        return Plan(frozenset(bad), delays)


def simulate(settings: Settings, work: Path) -> dict[str, Any]:
    """Run the rollout; the result as a JSON-ready dict. Everything started is stopped."""
    with running(work, settings.budget, settings.halt_after, settings.servers) as services:
        image = render_image(work, services, settings.retry)
        hosts = make_hosts(work, image, services, settings.hosts, settings.plan())
        fleet = Fleet(image, hosts, settings.reboot_seconds)
        slots = Slots(services)
        slots.start(settings.budget)
        try:
            timeline = _run_loop(_rollout(settings, services, fleet))
        finally:
            slots.stop()
            for host in hosts:
                host.stop()
        return _result(settings, services, fleet, slots, timeline)


def _run_loop(coroutine: Any) -> dict[str, Any]:
    loop = asyncio.new_event_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with contextlib.suppress(AttributeError, NotImplementedError):
            # Python < 3.12: one pidfd per child, not one thread per child (1,000 of them).
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(loop)
            asyncio.set_child_watcher(watcher)
    try:
        result: dict[str, Any] = loop.run_until_complete(coroutine)
        return result
    finally:
        # Stopped early (a signal): the hosts' lives end here, before the loop does.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(_settle(pending))
        loop.close()


async def _settle(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


async def _rollout(settings: Settings, services: Services, fleet: Fleet) -> dict[str, Any]:
    timeline: dict[str, Any] = {"events": []}
    await asyncio.to_thread(services.promote, "v2")
    since = services.registry_log_size()  # the hosts' requests only, not the promotion's
    started = time.monotonic()
    timeline["server_cpu_at_start"] = [s.cpu_seconds for s in services.servers]
    finished: dict[int, float] = {}

    async def live(host: Host) -> None:
        await fleet.live(host)
        finished[host.index] = time.monotonic() - started

    tasks = [asyncio.create_task(live(h)) for h in fleet.hosts]
    event = asyncio.create_task(_event(settings, services, fleet, started, timeline))
    deadline = started + settings.window + 3 * settings.ideal_seconds + 120
    halted_at = None
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0.25)
        if time.monotonic() > deadline:
            timeline["events"].append((time.monotonic() - started, "deadline: hosts stopped"))
            break
        if settings.halt_after and halted_at is None and await _halted(services):
            halted_at = time.monotonic() - started
            timeline["events"].append((halted_at, f"ring {RING} halted"))
        if halted_at is not None and _only_refused_left(fleet, settings, started + halted_at):
            break
    for host in fleet.hosts:
        if host.phase != "done":
            host.reason = f"stopped while {host.phase}: " + (host.log[-1] if host.log else "")
            host.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    event.cancel()
    timeline["finished"] = finished
    timeline["started"] = started
    timeline["registry_requests"] = services.registry_requests(since)
    timeline["halted_at"] = halted_at
    timeline["elapsed"] = time.monotonic() - started
    return timeline


async def _halted(services: Services) -> bool:
    try:
        keys = await asyncio.to_thread(Etcd(services.etcd.url, 1.0).keys, rollback_prefix(RING))
    except EtcdUnavailable:
        return False
    return len(keys) >= services.halt_after


def _only_refused_left(fleet: Fleet, settings: Settings, halted: float) -> bool:
    """After a halt: nobody rebooting, and every host still updating has been told 403
    ring_halted (or has had time to be: one ask of every host after the halt)."""
    busy = [h for h in fleet.hosts if h.phase in ("rebooting", "health")]
    waiting = [h for h in fleet.hosts if h.phase in ("updating", "waiting")]
    told = all(h.halted_seen for h in waiting if h.phase == "updating")
    patience = halted + settings.retry * 1.1 + settings.window + 10
    return not busy and (told or time.monotonic() > patience)


async def _event(
    settings: Settings, services: Services, fleet: Fleet, started: float, timeline: dict[str, Any]
) -> None:
    if settings.scenario == "none":
        return
    while sum(h.phase == "done" for h in fleet.hosts) < settings.event_at * settings.hosts:
        await asyncio.sleep(0.1)
    at = time.monotonic() - started
    if settings.scenario == "etcd-restart":
        services.etcd.stop()
        timeline["events"].append((at, "etcd stopped"))
        await asyncio.sleep(settings.outage)
        await asyncio.to_thread(services.etcd.start)
        timeline["events"].append((time.monotonic() - started, "etcd started again"))
    elif settings.scenario == "kill-server":
        services.servers[0].stop(signal.SIGKILL)
        timeline["events"].append((at, f"server 0 ({services.servers[0].address}) killed"))


def _result(
    settings: Settings, services: Services, fleet: Fleet, slots: Slots, timeline: dict[str, Any]
) -> dict[str, Any]:
    new, old = services.images["v2"], services.images["v1"]
    for server in services.servers:
        server.sample()
    on_new = [h for h in fleet.hosts if h.booted_digest() == new]
    not_new = [
        {"host": h.index, "booted": h.booted_digest(), "bad": h.bad, "why": h.reason}
        for h in fleet.hosts
        if h.booted_digest() != new
    ]
    updated = len(on_new) + fleet.rollback_reboots  # hosts that rebooted into the update
    cpu = [
        s.cpu_seconds - before
        for s, before in zip(services.servers, timeline["server_cpu_at_start"], strict=True)
    ]
    finished = timeline["finished"]
    converged = max((finished[h.index] for h in on_new), default=0.0)
    status_text, status_json = services.fleet_status()
    held = sorted(h.held[1] - h.held[0] for h in fleet.hosts if h.held)
    return {
        "settings": {**settings.__dict__, "ideal_seconds": settings.ideal_seconds},
        "digests": {"old": old, "new": new},
        "events": timeline["events"],
        "budget": {
            "slots": settings.budget,
            "max_held": slots.max_held,
            "max_leased": slots.max_leased,
            "samples": slots.samples,
            "missed_samples": slots.missed,
            "over_budget": slots.over_budget,
            "max_hosts_down_for_update": fleet.max_down,
            "refused_asks": dict(fleet.refusals),
            "kept": slots.max_held <= settings.budget and not slots.over_budget,
        },
        "hosts": {
            "total": settings.hosts,
            "on_new": len(on_new),
            "on_old": sum(h.booted_digest() == old for h in fleet.hosts),
            "rolled_back": fleet.rollback_reboots,
            "not_on_new": not_new,
            "why_not": dict(Counter(_kind(str(r["why"])) for r in not_new)),
        },
        "converge": {
            "seconds": round(converged, 1),
            "ideal_seconds": settings.ideal_seconds,
            "ratio": round(converged / settings.ideal_seconds, 3)
            if on_new and timeline["halted_at"] is None
            else None,
            "halted_at": timeline["halted_at"],
            # seconds after the promotion when a quarter, half, ... of the hosts were done
            "quartiles": _quartiles(sorted(finished.values()), settings.hosts),
            "elapsed": round(timeline["elapsed"], 1),
            # a host's reboot into the update to the end of its health script (the slot is
            # taken just before and released just before the end), and the share of the
            # budget's slot-seconds those spans fill until the last host is done
            "reboot_to_healthy_median": round(held[len(held) // 2], 2) if held else None,
            "slot_use": round(sum(held) / (settings.budget * converged), 3) if converged else None,
        },
        "registry": {
            "requests": timeline["registry_requests"],
            "per_host": round(timeline["registry_requests"] / settings.hosts, 2),
        },
        "servers": [
            {
                "address": s.address,
                "cpu_seconds": round(c, 2),
                "peak_rss_mib": round(s.peak_rss_kib / 1024, 1),
                "killed": s.process is not None and s.process.returncode == -signal.SIGKILL,
                "granted": s.log.read_text().count(": granted"),
            }
            for s, c in zip(services.servers, cpu, strict=True)
        ],
        "server_cpu_seconds_per_host_update": round(sum(cpu) / updated, 4) if updated else None,
        "trace": {  # seconds after the promotion: refused asks, reboot-to-healthy spans
            "refused": [round(t - timeline["started"], 2) for t in fleet.refused_at],
            "held": [
                [
                    round(h.held[0] - timeline["started"], 2),
                    round(h.held[1] - timeline["started"], 2),
                ]
                for h in fleet.hosts
                if h.held
            ],
            "started": [round(h.started - timeline["started"], 2) for h in fleet.hosts],
        },
        "fleet_status": {"text": status_text, "json_rings": status_json.get("rings")},
    }


def _quartiles(times: list[float], hosts: int) -> dict[str, float | None]:
    return {
        f"{q}%": round(times[-(-hosts * q // 100) - 1], 1)
        if len(times) >= hosts * q / 100
        else None
        for q in (25, 50, 75, 100)
    }


def _kind(why: str) -> str:
    """A reason, without what differs between hosts (ids, digests, seconds)."""
    for marker, kind in (
        ("ring_halted", "ring halted (403 ring_halted)"),
        ("not active", "health check failed: rolled back"),
        ("rolling back", "health check failed: rolled back"),
        ("not taken again", "digest refused after a rollback"),
        ("no reboot slot yet", "waiting for a slot when stopped"),
    ):
        if marker in why:
            return kind
    return why[:120] or "unknown"
