"""Benchmark: a rollout to N simulated hosts under one FleetLock budget kept by two servers.

    python -m bench.fleet [--hosts 1000] [--budget 20] [--reboot-seconds 10] [--servers 2]
                          [--bad-share 0.05 --halt-after 3] [--scenario etcd-restart|kill-server]
                          [--retry 30] [--window SECONDS] [--json PATH] [--keep]

Real etcd, real `nestcustom fleetlock serve` (two, one budget), a real docker-registry
with two tiny images, `nestcustom promote` moving the ring to v2; each host runs the
update and health scripts rendered from a recipe with `updates:` (bench/fleet/hosts.py
says how a host is simulated). It shows: the most slots held at once (etcd sampled every
100 ms) against the budget, which hosts end on the promoted digest and why the others do
not, the time to converge against the ideal (hosts / budget x reboot seconds; goal at
most 1.2x), registry requests per host, the servers' CPU seconds per host update and
peak RSS. Exit status 1 when the budget was exceeded or a host ended neither on the new
digest nor with a reason.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fleet.run import SCENARIOS, Settings, simulate


def parse(argv: list[str]) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=20, help="reboot slots of the group")
    parser.add_argument("--reboot-seconds", type=float, default=10.0)
    parser.add_argument("--servers", type=int, choices=(1, 2), default=2)
    parser.add_argument("--bad-share", type=float, default=0.0)
    parser.add_argument("--halt-after", type=int, default=0)
    parser.add_argument("--retry", type=int, default=30, help="the recipe's updates: retry")
    parser.add_argument(
        "--window",
        type=float,
        help="update timers fire within this many seconds of the promotion "
        "(default: half the ideal, hosts / budget x reboot seconds)",
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="none")
    parser.add_argument("--event-at", type=float, default=0.3)
    parser.add_argument("--outage", type=float, default=2.0, help="seconds etcd is down")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="where to write the result (JSON)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    problems = [
        f"--{name.replace('_', '-')} must be {rule}"
        for name, ok, rule in (
            ("hosts", args.hosts >= 1, "at least 1"),
            ("budget", args.budget >= 1, "at least 1"),
            ("reboot_seconds", args.reboot_seconds > 0, "positive"),
            ("bad_share", 0 <= args.bad_share <= 1, "between 0 and 1"),
            ("halt_after", args.halt_after >= 0, "0 or more"),
            ("retry", args.retry >= 1, "at least 1"),
            ("window", args.window is None or args.window >= 0, "0 or more"),
            ("event_at", 0 <= args.event_at < 1, "between 0 and 1"),
        )
        if not ok
    ]
    if args.scenario == "kill-server" and args.servers < 2:
        problems.append("--scenario kill-server needs --servers 2")
    if problems:
        parser.error("; ".join(problems))
    settings = Settings(
        hosts=args.hosts, budget=args.budget, reboot_seconds=args.reboot_seconds,
        servers=args.servers, bad_share=args.bad_share, halt_after=args.halt_after,
        retry=args.retry, scenario=args.scenario, event_at=args.event_at,
        window=args.hosts / args.budget * args.reboot_seconds / 2 if args.window is None
        else args.window,
        outage=args.outage, seed=args.seed,
    )  # fmt: skip
    return settings, args


def summary(result: dict[str, Any]) -> str:
    s, budget, hosts = result["settings"], result["budget"], result["hosts"]
    converge, servers = result["converge"], result["servers"]
    lines = [
        f"fleet: {s['hosts']} hosts, budget {s['budget']}, reboot {s['reboot_seconds']:g} s, "
        f"{len(servers)} server(s), scenario {s['scenario']}, bad share {s['bad_share']:g}, "
        f"halt after {s['halt_after']}",
        *(f"  {at:7.1f} s  {what}" for at, what in result["events"]),
        f"budget: max held {budget['max_held']} (leases {budget['max_leased']}) <= "
        f"{budget['slots']}: {'kept' if budget['kept'] else 'EXCEEDED'}  "
        f"[{budget['samples']} samples at 100 ms, {budget['missed_samples']} missed; "
        f"at most {budget['max_hosts_down_for_update']} hosts down for the update at once]",
        f"hosts: {hosts['on_new']}/{hosts['total']} on the promoted digest, "
        f"{hosts['on_old']} on the old one ({hosts['rolled_back']} rolled back)",
        *(f"  {n} x {why}" for why, n in sorted(hosts["why_not"].items())),
        f"converge: {converge['seconds']} s vs ideal {converge['ideal_seconds']:g} s "
        f"(hosts / budget x reboot) = "
        + (
            f"{converge['ratio']}x (goal <= 1.2)"
            if converge["ratio"] is not None
            else f"n/a (the ring halted at {converge['halted_at']:.1f} s)"
            if converge["halted_at"] is not None
            else "n/a (no host on the new digest)"
        ),
        f"registry: {result['registry']['requests']} requests, "
        f"{result['registry']['per_host']} per host",
        "servers: "
        + "; ".join(
            f"{v['address']} {v['granted']} slots granted, {v['cpu_seconds']} CPU s, "
            f"peak RSS {v['peak_rss_mib']} MiB" + (" (killed)" if v["killed"] else "")
            for v in servers
        )
        + f"; {result['server_cpu_seconds_per_host_update']} CPU s per host update",
        "nestcustom fleet status:",
        *("  " + line for line in result["fleet_status"]["text"].splitlines()[:12]),
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    settings, args = parse(argv)
    # SIGTERM as SIGINT: the run unwinds and stops every process it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="nestcustom-bench-fleet-", dir="/var/tmp"))
    try:
        result = simulate(settings, work)
    except KeyboardInterrupt:
        print("bench.fleet: stopped; every process it started is ended", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = args.json or Path(f"/var/tmp/nestcustom-bench-fleet-{int(time.time())}.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    print(f"result: {out}" + (f"; work directory kept: {work}" if args.keep else ""))
    unexplained = [r for r in result["hosts"]["not_on_new"] if not r["why"]]
    return 0 if result["budget"]["kept"] and not unexplained else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
