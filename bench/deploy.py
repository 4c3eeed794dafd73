"""Benchmark: a rollout to 16 hosts, 8 at a time, against one host and against Ansible.

Runs on the local universe with the test hosts (real sshd, host-mode
rpm-ostree that fetches from the real registry). In one run:

- nestcustom to one host (the baseline of the batching ratio, goal <= 3),
- nestcustom to 16 hosts, --batch 8,
- the same rollout as two Ansible playbooks (bench/ansible_rollout.py) to the
  same 16 hosts, `serial: 8`: the lightest idiomatic one (raw tasks only, the
  reboot waited for over Ansible's own connection), the baseline of the goals,
  and the earlier heavier one (a local ssh once a second per host),
- in alternating rounds (--rounds, default 3), each run to the other image.

For each: wall time, controller CPU (the tool and every ssh process it
started, control masters included: this process is their subreaper and ends
them after the run), SSH connections and remote commands per host (from each
host's sshd log). Goals, against the light playbook: nestcustom <= 0.5 of its
wall time, <= 0.3 of its controller CPU, <= 5 remote commands per host.

    python -m bench.deploy [--hosts 16] [--batch 8] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import as_installed
from bench.ansible_rollout import write_project
from tests.universe.fleet.harness import HostFleet
from tests.universe.fleet.image import build_host_image
from tests.universe.session import CACHE, universe

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Run:
    seconds: float
    controller_cpu: float  # user + system seconds of the tool and its ssh processes
    connections: float  # per host, mean
    commands: float  # remote commands per host, mean
    commands_max: int


def _children() -> list[int]:
    """Live children of this process (orphaned ssh control masters end up here)."""
    me, found = str(os.getpid()), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.append(int(entry.name))
    return found


def _is_host_monitor(pid: int) -> bool:
    """A test host's conmon: a host "reboot" restarts its container, and the new conmon is
    orphaned to this subreaper too. It and the podman cleanup it ran are the host's work,
    not the controller's, and it must keep running for the next run."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "conmon"  # a zombie has no exe
    except OSError:
        return False


def _end_orphans(before: set[int]) -> None:
    """End the control masters the measured run left behind (by pid: children that were not
    ours before the run, such as the universe's registry, and are not a test host's conmon)
    and reap them, so their CPU time is counted in RUSAGE_CHILDREN."""
    for pid in set(_children()) - before:
        if _is_host_monitor(pid):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def measure(argv: list[str], cwd: Path, fleet: HostFleet, env: dict[str, str] | None = None) -> Run:
    connections = [h.connections() for h in fleet.hosts]
    commands = [h.commands_run() for h in fleet.hosts]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
    ours = set(_children())
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    _end_orphans(ours)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"{argv[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    per_host_commands = [h.commands_run() - n for h, n in zip(fleet.hosts, commands, strict=True)]
    per_host_connections = [
        h.connections() - n for h, n in zip(fleet.hosts, connections, strict=True)
    ]
    count = len(fleet.hosts)
    return Run(
        seconds,
        usage.ru_utime + usage.ru_stime - cpu_before,
        sum(per_host_connections) / count,
        sum(per_host_commands) / count,
        max(per_host_commands),
    )


def nestcustom(workdir: Path, fleet: HostFleet, reference: str, batch: int) -> Run:
    inventory = fleet.inventory(workdir / f"hosts-{len(fleet.hosts)}.yaml")
    argv = [
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
        "--journal",
        str(workdir / f"journal-{time.monotonic_ns()}.jsonl"),
    ]
    return measure(argv, workdir, fleet)


def ansible(workdir: Path, fleet: HostFleet, reference: str, batch: int, wait: str) -> Run:
    from nestcustom.deploy.target import resolve_target

    target = resolve_target(reference, signed=False, tls_verify=False)
    config, playbook = write_project(
        workdir / f"ansible-{wait}",
        fleet,
        target.pinned,
        target.digest,
        platform.machine(),
        batch,
        wait,
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(config), "ANSIBLE_HOME": str(workdir / "ansible")}
    binary = str(Path(sys.executable).with_name("ansible-playbook"))
    argv = [binary, "-i", str(config.parent / "inventory.json"), str(playbook)]
    return measure(argv, workdir, fleet, env)


def second_image(mirror: str) -> str:
    """The mirror plus one label, pushed beside it: a second target for the same hosts."""
    reference = mirror.rsplit(":", 1)[0] + ":bench-other"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {mirror}\nLABEL org.nestcustom.bench=ansible\n"
        )
        subprocess.run(
            ["podman", "build", "-q", "-t", reference, tmp], check=True, capture_output=True
        )
    subprocess.run(
        ["podman", "push", "-q", "--tls-verify=false", reference], check=True, capture_output=True
    )
    return reference


TOOLS = ("nestcustom", "ansible-light", "ansible-heavy")


def median(runs: list[Run]) -> Run:
    """The run of median wall time (its other measures with it)."""
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom deploy benchmark")
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the three")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    as_installed()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    image = build_host_image(CACHE)
    runs: dict[str, list[Run]] = {tool: [] for tool in TOOLS}
    load = os.getloadavg()
    with universe() as world, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        targets = (world.mirror, second_image(world.mirror))
        with HostFleet(1, image, workdir / "one", world.registry.host) as one:
            single = nestcustom(workdir, one, world.mirror, 1)
        with HostFleet(args.hosts, image, workdir / "many", world.registry.host) as many:
            turn = 0
            for _ in range(args.rounds):
                # Alternating, each run to the other image, so every run changes every host
                # and a change of the machine's load falls on all three alike.
                for tool in TOOLS:
                    target = targets[turn % 2]
                    turn += 1
                    if tool == "nestcustom":
                        runs[tool].append(nestcustom(workdir, many, target, args.batch))
                    else:
                        wait = tool.removeprefix("ansible-")
                        runs[tool].append(ansible(workdir, many, target, args.batch, wait))
    ours, light, heavy = (median(runs[tool]) for tool in TOOLS)

    def paired(measure: str, baseline: str) -> float:
        """The median of each round's ratio: runs of one round ran back to back, under the
        same load, so their ratio is steadier than a ratio of medians."""
        ratios = sorted(
            float(getattr(a, measure)) / float(getattr(b, measure))
            for a, b in zip(runs["nestcustom"], runs[baseline], strict=True)
        )
        middle = len(ratios) // 2
        return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2

    result = {
        "hosts": args.hosts,
        "batch": args.batch,
        "rounds": args.rounds,
        "load_before": load,
        "load_after": os.getloadavg(),
        "one_host": asdict(single),
        "runs": {tool: [asdict(r) for r in runs[tool]] for tool in TOOLS},
        "batching_ratio": ours.seconds / single.seconds,
        "wall_vs_ansible": paired("seconds", "ansible-light"),
        "cpu_vs_ansible": paired("controller_cpu", "ansible-light"),
        "wall_vs_ansible_heavy": paired("seconds", "ansible-heavy"),
        "cpu_vs_ansible_heavy": paired("controller_cpu", "ansible-heavy"),
        "cores": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"load {load[0]:.2f} before, {result['load_after'][0]:.2f} after; {args.rounds} rounds; "
        "runs: the median by wall time; ratios: the median of each round's ratio"
    )
    print(
        f"one host: {single.seconds:.1f} s; {args.hosts} hosts, batch {args.batch}: "
        f"{ours.seconds:.1f} s (ratio {result['batching_ratio']:.2f})"
    )
    for name, run in (("nestcustom", ours), ("ansible-light", light), ("ansible-heavy", heavy)):
        each = ", ".join(f"{r.seconds:.1f}/{r.controller_cpu:.2f}" for r in runs[name])
        print(
            f"{name:13}  wall {run.seconds:6.1f} s  controller CPU {run.controller_cpu:6.2f} s  "
            f"ssh connections/host {run.connections:4.1f}  remote commands/host {run.commands:4.1f} "
            f"(max {run.commands_max})  [each run wall/CPU: {each}]"
        )
    print(
        f"nestcustom / ansible-light: wall {result['wall_vs_ansible']:.2f} (goal <= 0.5), "
        f"controller CPU {result['cpu_vs_ansible']:.2f} (goal <= 0.3)"
    )
    print(
        f"nestcustom / ansible-heavy: wall {result['wall_vs_ansible_heavy']:.2f}, "
        f"controller CPU {result['cpu_vs_ansible_heavy']:.2f}"
    )


if __name__ == "__main__":
    main()
