"""Benchmark: a rollout to 16 hosts, 8 at a time, against a rollout to one host.

Runs on the local universe with the test hosts (real sshd, host-mode
rpm-ostree that fetches from the real registry). Reports the wall time of
each rollout, their ratio (goal <= 3: batching must overlap the waiting) and
the deploy process's peak memory.

    python -m bench.deploy [--hosts 16] [--batch 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.universe.fleet.harness import HostFleet
from tests.universe.fleet.image import build_host_image
from tests.universe.session import CACHE, universe


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent not idle, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_kib: int
    machine_cpu: float  # every process: nestcustom, ssh, the emulated hosts, podman
    deploy_cpu: float  # the deploy process and its ssh clients only


def deploy(workdir: Path, fleet: HostFleet, reference: str, batch: int) -> Run:
    """Wall time, peak RSS and CPU of one `nestcustom deploy`."""
    inventory = fleet.inventory(workdir / f"hosts-{len(fleet.hosts)}.yaml")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = usage.ru_maxrss
    own_before = usage.ru_utime + usage.ru_stime
    machine_before = busy_cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "deploy",
            "-i",
            str(inventory),
            reference,
            "--batch",
            str(batch),
            "--no-tls-verify",
            "--json",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"deploy failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    outcomes = {h["outcome"] for h in json.loads(done.stdout)["hosts"]}
    assert outcomes == {"updated"}, outcomes
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Run(
        seconds,
        max(usage.ru_maxrss, before),
        busy_cpu_seconds() - machine_before,
        usage.ru_utime + usage.ru_stime - own_before,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom deploy benchmark")
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    image = build_host_image(CACHE)
    with universe() as world, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        reference = world.mirror  # bootable, in the registry
        with HostFleet(1, image, workdir / "one", world.registry.host) as one:
            single = deploy(workdir, one, reference, 1)
        with HostFleet(args.hosts, image, workdir / "many", world.registry.host) as many:
            fleet = deploy(workdir, many, reference, args.batch)
    cores = os.cpu_count() or 1
    result = {
        "one_host_s": single.seconds,
        "hosts": args.hosts,
        "batch": args.batch,
        "fleet_s": fleet.seconds,
        "ratio": fleet.seconds / single.seconds,
        "peak_rss_mib": fleet.peak_kib / 1024,
        "machine_cpu_s": {"one": single.machine_cpu, "fleet": fleet.machine_cpu},
        "deploy_process_cpu_s": {"one": single.deploy_cpu, "fleet": fleet.deploy_cpu},
        "cores": cores,
        # The fleet cannot finish faster than its CPU work spread over every core.
        "cpu_bound_s": fleet.machine_cpu / cores,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"one host: {single.seconds:.1f} s; {args.hosts} hosts, batch {args.batch}: {fleet.seconds:.1f} s; "
        f"ratio {result['ratio']:.2f} (goal <= 3)"
    )
    print(
        f"machine CPU: one host {single.machine_cpu:.1f} s, fleet {fleet.machine_cpu:.1f} s "
        f"= at least {fleet.machine_cpu / cores:.1f} s of wall time on {cores} cores"
    )
    print(
        f"the deploy process and its ssh clients: {single.deploy_cpu:.2f} s CPU for one host, "
        f"{fleet.deploy_cpu:.2f} s for the fleet"
    )
    print(f"peak memory of the deploy process: {result['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
