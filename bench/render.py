"""Benchmark: validate (and render) N generated recipes of 20-60 packages in 3-6 layers.

Three measurements on generated projects:

- in process: each recipe file loaded by `load_recipe` (YAML with positions,
  schema, lints, file hashing) and rendered by `render_containerfile`, against
  `yaml.load(text, Loader=yaml.CSafeLoader)` on the same texts in the same
  process, in CPU time. Reported per count, with the growth per recipe (1.00 is
  linear).
- through the CLI, as a user runs it: one `nestcustom validate` of 1,000
  files, against one `python -c` loop of `yaml.load(f, Loader=CSafeLoader)`
  over the same files (interpreter start-up included on both sides, both with
  their modules' bytecode), each run alternately several times; the medians
  are compared, of wall and of CPU time. Goal: at most 2.5 times the bare parse
  and at most 2 ms per recipe (the line starting `CLI:`, which says it for
  both, with the load average: CPU time is what a run takes on an idle
  machine, and on a shared one wall time also counts other processes' turns).
- per package: the same 1,000 recipes written with 10, 30 and 60 packages:
  through the CLI as above, the goal at each size; in process (`load_recipe`
  against `yaml.load`, best of five passes, CPU time), the cost of one more package,
  over each interval of sizes (equal when the cost per package is flat). Goal:
  one package costs at most 2.5 times what it costs the parse.

    python bench/render.py [--counts 1000,10000] [--cli-runs 5] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nestcustom.containerfile.render import render_containerfile
from nestcustom.recipe.load import load_recipe

try:
    from yaml import CSafeLoader as BaselineLoader

    LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as BaselineLoader  # type: ignore[assignment]

    LIBYAML = False

GOAL_MS = 2.0
GOAL_CLI_RATIO = 2.5
CLI_COUNT = 1000
BASELINE_LOOP = (
    "import sys, yaml\n"
    "for p in sys.argv[1:]:\n"
    "    with open(p, 'rb') as f:\n"
    "        yaml.load(f, Loader=yaml.CSafeLoader)\n"
)
PACKAGES_PER_RECIPE = (20, 60)  # what real recipes hold, in several layers
LAYERS_PER_RECIPE = (3, 6)
PER_PACKAGE_SIZES = (10, 30, 60)  # the same recipes at these sizes: the cost of one package
PACKAGES = [
    "strace", "tcpdump", "jq", "lsof", "htop", "gdb", "perf", "sysstat", "iotop", "nmap",
    "vim-enhanced", "tmux", "gcc-c++", "python3.11", "perl-Net_SSLeay", "iproute-tc",
    "bpftrace", "ethtool", "nvme-cli", "podman-remote", "bash-completion", "rsync",
    '"kernel-devel-{{kernel}}"', "audit", "chrony", "cloud-init", "cockpit-ws", "conntrack-tools",
    "crash", "dmidecode", "dnsmasq", "e2fsprogs", "fio", "gdisk", "git-core", "hdparm",
    "ipmitool", "iptables-nft", "iscsi-initiator-utils", "keepalived", "kexec-tools", "ledmon",
    "libvirt-client", "lldpad", "lvm2", "mdadm", "mtr", "net-snmp", "nfs-utils", "numactl",
    "openssh-clients", "pciutils", "policycoreutils-python-utils", "psmisc", "qemu-guest-agent",
    "rasdaemon", "sg3_utils", "smartmontools", "socat", "sos", "stress-ng", "tuned", "unzip",
    "usbutils", "wget", "xfsprogs", "zstd", "bind-utils", "blktrace", "bridge-utils", "cifs-utils",
    "device-mapper-multipath", "dracut-network", "haproxy", "irqbalance", "libibverbs-utils",
]  # fmt: skip
UNITS = ["chronyd.service", "examplecorp-agent.service", "getty@tty2.service", "fstrim.timer"]
FILES = {  # src under the project -> (dest, mode)
    "files/motd": ("/etc/motd", "0644"),
    "files/agent/agent.conf": ("/etc/examplecorp/agent.conf", "0640"),
    "files/sysctl.conf": ("/etc/sysctl.d/90-examplecorp.conf", "0644"),
}


def recipe_text(index: int, packages: int | None = None) -> str:
    """A realistic recipe: 20-60 packages (or `packages`) in 3-6 layers, a repo, a file,
    units, labels, tests.

    Everything but the packages is drawn from the recipe's index alone, so the same
    recipe can be written with 10, 30 or 60 packages and its cost per package measured.
    """
    rng = random.Random(index)
    picks = random.Random(f"{index}/packages")
    count = packages or picks.randint(*PACKAGES_PER_RECIPE)
    layer_count = rng.randint(*LAYERS_PER_RECIPE)
    names = picks.sample(PACKAGES, len(PACKAGES))[:count]  # a smaller size: a prefix
    # Layers of uneven sizes, in the same proportions at every size (each holds one or more).
    weights = [rng.uniform(1, 4) for _ in range(layer_count)]
    cuts: list[int] = []
    for k in range(layer_count - 1):
        want = round(count * sum(weights[: k + 1]) / sum(weights))
        cuts.append(min(max(want, cuts[-1] + 1 if cuts else 1), count - (layer_count - 1 - k)))
    runs = [names[a:b] for a, b in zip([0, *cuts], [*cuts, count], strict=True)]
    layers = []
    for layer, run in enumerate(runs):
        install = [
            f"{n} >= {picks.randint(1, 9)}.{picks.randint(0, 20)}"
            if picks.random() < 0.2 and "{" not in n
            else n
            for n in run
        ]
        text = f"  - name: layer-{layer}\n    description: generated layer {layer}\n"
        if rng.random() < 0.5:  # long lists are often written one item a line
            text += "    install:\n" + "".join(f"      - {item}\n" for item in install)
        else:
            text += f"    install: [{', '.join(install)}]\n"
        if layer == 0:
            text += f"    remove: [toolbox, nano-{index % 7}]\n"
        if layer == layer_count - 1:
            text += (
                f"    replace: [https://repo.example.com/updates/tmux-3.3a-{index}.x86_64.rpm]\n"
            )
        layers.append(text)
    src, (dest, mode) = rng.choice(sorted(FILES.items()))
    return (
        "# yaml-language-server: $schema=../nestcustom/recipe/schema/recipe.schema.json\n"
        f"name: image-{index}\n"
        f"description: generated recipe {index}\n"
        "arch: x86_64\n"
        "base:\n"
        "  image: hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0-x86_64\n"
        '  rpm-ostree: "2022.16"\n'
        "repos:\n"
        "  - id: examplecorp-tools\n"
        "    name: Example Corp tools\n"
        "    baseurl: https://repo.example.com/tools/$basearch/\n"
        "    gpgkey: https://repo.example.com/RPM-GPG-KEY-tools\n"
        "layers:\n" + "".join(layers) + "files:\n"
        f'  - {{src: {src}, dest: {dest}, mode: "{mode}"}}\n'
        "systemd:\n"
        f"  enable: [{', '.join(rng.sample(UNITS, 2))}]\n"
        "  disable: [zincati.service]\n"
        "labels:\n"
        "  org.opencontainers.image.vendor: Example Corp\n"
        f"  com.example.team: team-{index % 13}\n"
        "tests:\n"
        "  packages:\n"
        f"    present: [{next(n for n in names if '{' not in n)}]\n"
        "    absent: [toolbox]\n"
    )


def write_project(
    root: Path, count: int, packages: int | None = None
) -> tuple[list[Path], list[str]]:
    """Recipes r0..r{count-1}.yaml under root/recipes, and their texts."""
    for src in FILES:
        (root / src).parent.mkdir(parents=True, exist_ok=True)
        (root / src).write_text(f"# {src}\ninterval = 60\n")
    (root / "recipes").mkdir()
    paths, texts = [], []
    for index in range(count):
        path = root / "recipes" / f"r{index}.yaml"
        text = recipe_text(index, packages)
        path.write_text(text)
        paths.append(path)
        texts.append(text)
    return paths, texts


def run_nestcustom(paths: list[Path], project: Path) -> int:
    size = 0
    for path in paths:
        recipe = load_recipe(path, project=project).recipe
        size += len(render_containerfile(recipe, f"containerfiles/{recipe.name}").containerfile)
    return size


def run_baseline(texts: list[str]) -> int:
    size = 0
    for text in texts:
        size += len(
            yaml.load(text, Loader=BaselineLoader)
        )  # a safe loader (libyaml's when present)
    return size


def timed(
    work: Callable[..., object], *args: object, clock: Callable[[], float] = time.perf_counter
) -> float:
    # gc stays enabled: the collections a real `nestcustom render --all` triggers (it
    # allocates many small objects per recipe) are part of its cost, and disabling gc
    # would hide growth that comes from them. Garbage from earlier sections is collected
    # first so that no section pays for another's.
    gc.collect()
    started = clock()
    work(*args)
    return clock() - started


@dataclass
class Row:
    recipes: int
    ms_per_recipe: float
    baseline_ms_per_recipe: float
    ratio_to_baseline: float


def measure(count: int) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        paths, texts = write_project(project, count)
        # Warm up once: imports, the schema and its validator, re's pattern cache.
        run_nestcustom(paths[:20], project)
        run_baseline(texts[:20])
        # CPU time: what the work costs, which other processes on the machine do not stretch.
        ours = timed(run_nestcustom, paths, project, clock=time.process_time)
        base = timed(run_baseline, texts, clock=time.process_time)
    return Row(count, 1000 * ours / count, 1000 * base / count, ours / base)


@dataclass
class CliRow:
    recipes: int
    packages_per_recipe: float  # the mean
    runs: int
    ms_per_recipe: float  # median over the runs, start-up included
    baseline_ms_per_recipe: float
    ratio_to_baseline: float
    # The same from the CPU time (user + system) each process used: what the work costs,
    # undisturbed by other load on the machine, which stretches wall time.
    cpu_ms_per_recipe: float
    baseline_cpu_ms_per_recipe: float
    cpu_ratio_to_baseline: float


def measure_cli(count: int, runs: int, sizes: Sequence[int | None] = (None,)) -> list[CliRow]:
    """`nestcustom validate FILES` against a bare libyaml loop over FILES, for a project of
    each size (packages per recipe; None: 20-60). Every run runs both commands on every
    project, alternately, so that a change of load on the machine falls on all alike."""
    with tempfile.TemporaryDirectory() as tmp:
        env = _bytecode_env(Path(tmp) / "pycache")
        projects = []
        for index, size in enumerate(sizes):
            project = Path(tmp) / f"project-{index}"
            project.mkdir()
            paths, texts = write_project(project, count, size)
            files = [str(p.relative_to(project)) for p in paths]
            argvs = (
                [sys.executable, "-m", "nestcustom", "validate", *files],
                [sys.executable, "-c", BASELINE_LOOP, *files],
            )
            mean_packages = sum(_install_items(t) for t in texts) / count
            projects.append((project, argvs, mean_packages))
        for argv in projects[0][1]:  # compiles both sides' modules once, untimed
            warm = argv[:-count] + argv[-count:][:5]
            subprocess.run(warm, cwd=projects[0][0], env=env, check=True, capture_output=True)
        # [project][command] -> wall and CPU seconds of each run
        wall: list[tuple[list[float], list[float]]] = [([], []) for _ in projects]
        cpu: list[tuple[list[float], list[float]]] = [([], []) for _ in projects]
        for _ in range(runs):
            for index, (project, argvs, _) in enumerate(projects):
                for side, argv in enumerate(argvs):
                    started = time.perf_counter()
                    child = subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.DEVNULL)
                    _, status, usage = os.wait4(child.pid, 0)
                    wall[index][side].append(time.perf_counter() - started)
                    if os.waitstatus_to_exitcode(status) != 0:
                        raise SystemExit(f"{argv[:4]} failed: {os.waitstatus_to_exitcode(status)}")
                    cpu[index][side].append(usage.ru_utime + usage.ru_stime)
    rows = []
    for (_, _, mean_packages), (ours, base), (ours_cpu, base_cpu) in zip(
        projects, wall, cpu, strict=True
    ):
        ms = 1000 * statistics.median(ours) / count
        base_ms = 1000 * statistics.median(base) / count
        cpu_ms = 1000 * statistics.median(ours_cpu) / count
        base_cpu_ms = 1000 * statistics.median(base_cpu) / count
        rows.append(
            CliRow(
                count,
                mean_packages,
                runs,
                ms,
                base_ms,
                ms / base_ms,
                cpu_ms,
                base_cpu_ms,
                cpu_ms / base_cpu_ms,
            )
        )
    return rows


def _bytecode_env(prefix: Path) -> dict[str, str]:
    """Both commands run with their modules' bytecode, as installed packages have it.

    PyYAML's bytecode was written when pip installed it; nestcustom's is not there when
    PYTHONDONTWRITEBYTECODE is set (as in some CI and agent shells): every run would compile
    nestcustom's modules from source (45 ms), which no installed copy does. Both sides
    keep bytecode in one private prefix, so neither reads or writes the tree's own.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(prefix)
    return env


def _install_items(text: str) -> int:
    """The packages a generated recipe installs (in flow or block lists)."""
    lines = text.splitlines()
    flow = sum(line.count(",") + 1 for line in lines if line.startswith("    install: ["))
    return flow + sum(line.startswith("      - ") for line in lines)


@dataclass
class PerPackage:
    """The cost of one package: the same recipes at several sizes.

    Through the CLI (CPU time, median of the runs), each size against the goal; in
    process (`load_recipe` against `yaml.load` on the same texts, the best of five passes
    of CPU time, no start-up or other process in the figure), the cost of one more package.
    """

    sizes: list[CliRow]
    in_process_ms_per_recipe: list[float]
    baseline_in_process_ms_per_recipe: list[float]
    us_per_package: float  # in process, from the smallest size to the largest
    baseline_us_per_package: float
    # One package against one package of the bare parse: at most the goal ratio, or larger
    # recipes would drift past it.
    slope_ratio: float
    # The slope over each interval of sizes (10 -> 30, 30 -> 60): equal when the cost per
    # package is flat (the same for the 60th package as for the 10th).
    interval_us_per_package: list[float]


def measure_per_package(count: int, runs: int) -> PerPackage:
    rows = measure_cli(count, runs, PER_PACKAGE_SIZES)
    passes: list[list[tuple[float, float]]] = [[] for _ in PER_PACKAGE_SIZES]
    with tempfile.TemporaryDirectory() as tmp:
        projects = []
        for size in PER_PACKAGE_SIZES:
            project = Path(tmp) / str(size)
            project.mkdir()
            paths, texts = write_project(project, count, size)
            validate_all(paths[:20], project)  # warm up
            projects.append((project, paths, texts))
        # Sizes in turn, as the CLI runs; CPU time, which other processes do not stretch.
        for _ in range(5):
            for index, (project, paths, texts) in enumerate(projects):
                ours_s = timed(validate_all, paths, project, clock=time.process_time)
                passes[index].append((ours_s, timed(run_baseline, texts, clock=time.process_time)))
    ours = [1000 * min(o for o, _ in size) / count for size in passes]
    base = [1000 * min(b for _, b in size) / count for size in passes]
    sizes = PER_PACKAGE_SIZES

    def slope(ms: list[float], a: int, b: int) -> float:
        return 1000 * (ms[b] - ms[a]) / (sizes[b] - sizes[a])

    last = len(sizes) - 1
    return PerPackage(
        rows,
        ours,
        base,
        slope(ours, 0, last),
        slope(base, 0, last),
        slope(ours, 0, last) / slope(base, 0, last),
        [slope(ours, i, i + 1) for i in range(last)],
    )


def validate_all(paths: list[Path], project: Path) -> int:
    return sum(len(load_recipe(path, project=project).recipe.layers) for path in paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--counts", default="1000,10000", help="comma-separated recipe counts")
    parser.add_argument("--cli-runs", type=int, default=5, help="runs of each CLI command")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    rows = [measure(count) for count in counts]
    [cli] = measure_cli(CLI_COUNT, args.cli_runs)
    per_package = measure_per_package(CLI_COUNT, args.cli_runs)
    growth = rows[-1].ms_per_recipe / rows[0].ms_per_recipe
    result = {
        "python": platform.python_version(),
        "libyaml": LIBYAML,
        "baseline": f"yaml.load(text, Loader={BaselineLoader.__name__})",
        "goal_ms_per_recipe": GOAL_MS,
        "packages_per_recipe": PACKAGES_PER_RECIPE,
        "layers_per_recipe": LAYERS_PER_RECIPE,
        "rows": [asdict(row) for row in rows],
        "growth_per_recipe": growth,
        "goal_met": all(row.ms_per_recipe < GOAL_MS for row in rows),
        "cli": asdict(cli),
        "cli_goal_met": _cli_goal_met(cli),
        "cli_goal_met_cpu": _cli_goal_met_cpu(cli),
        "load_average": os.getloadavg(),
        "per_package": asdict(per_package),
        "per_package_goal_met": all(_cli_goal_met_cpu(size) for size in per_package.sizes)
        and per_package.slope_ratio <= GOAL_CLI_RATIO,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"validate + render, {PACKAGES_PER_RECIPE[0]}-{PACKAGES_PER_RECIPE[1]} packages in "
        f"{LAYERS_PER_RECIPE[0]}-{LAYERS_PER_RECIPE[1]} layers per recipe; "
        f"Python {result['python']}"
    )
    print(f"baseline: {result['baseline']} (libyaml: {'yes' if LIBYAML else 'NO'})")
    print(f"{'recipes':>8} {'CPU ms/recipe':>13} {'baseline':>9} {'ratio':>6}")
    for row in rows:
        print(
            f"{row.recipes:>8} {row.ms_per_recipe:>13.3f} {row.baseline_ms_per_recipe:>9.3f}"
            f" {row.ratio_to_baseline:>6.2f}"
        )
    print(
        f"growth {counts[0]} -> {counts[-1]}: {growth:.2f} per recipe (1.00 is linear); "
        f"goal < {GOAL_MS} ms per recipe: {'met' if result['goal_met'] else 'NOT met'}"
    )
    load = os.getloadavg()[0]
    print(
        f"CLI: `nestcustom validate` of {cli.recipes} files of {cli.packages_per_recipe:.1f} "
        f"packages (mean), median of {cli.runs}: {cli.ms_per_recipe:.3f} ms per recipe, "
        f"`python -c` yaml.load loop {cli.baseline_ms_per_recipe:.3f} ms, ratio "
        f"{cli.ratio_to_baseline:.2f} (wall); {cli.cpu_ms_per_recipe:.3f} ms, loop "
        f"{cli.baseline_cpu_ms_per_recipe:.3f} ms, ratio {cli.cpu_ratio_to_baseline:.2f} (CPU); "
        f"load average {load:.1f} on {os.cpu_count()} cores; goal <= {GOAL_CLI_RATIO} and "
        f"<= {GOAL_MS} ms: wall {'met' if result['cli_goal_met'] else 'NOT met'}, "
        f"CPU {'met' if result['cli_goal_met_cpu'] else 'NOT met'}"
    )
    print(
        "  (CPU time is what a run takes on an idle machine; on a shared one, wall time also "
        "counts the time other processes had the cores)"
    )
    print(f"per package (the same {CLI_COUNT} recipes at each size):")
    print(
        f"{'packages':>9} {'CLI cpu ms':>10} {'loop':>6} {'ratio':>6} {'wall ms':>8} {'ratio':>6}"
        f" {'in-process ms':>14} {'yaml.load':>9}"
    )
    for size, ms, base_ms in zip(
        per_package.sizes,
        per_package.in_process_ms_per_recipe,
        per_package.baseline_in_process_ms_per_recipe,
        strict=True,
    ):
        print(
            f"{size.packages_per_recipe:>9.0f} {size.cpu_ms_per_recipe:>10.3f} "
            f"{size.baseline_cpu_ms_per_recipe:>6.3f} {size.cpu_ratio_to_baseline:>6.2f}"
            f" {size.ms_per_recipe:>8.3f} {size.ratio_to_baseline:>6.2f} {ms:>14.3f} {base_ms:>9.3f}"
        )
    intervals = ", ".join(f"{us:.2f}" for us in per_package.interval_us_per_package)
    print(
        f"per package: {per_package.us_per_package:.2f} us, yaml.load "
        f"{per_package.baseline_us_per_package:.2f} us, ratio {per_package.slope_ratio:.2f} "
        f"(by interval of sizes: {intervals} us); goal (every size through the CLI by CPU "
        f"time, and one package <= {GOAL_CLI_RATIO} of the parse's): "
        f"{'met' if result['per_package_goal_met'] else 'NOT met'}"
    )


def _cli_goal_met(row: CliRow) -> bool:
    return row.ms_per_recipe <= GOAL_MS and row.ratio_to_baseline <= GOAL_CLI_RATIO


def _cli_goal_met_cpu(row: CliRow) -> bool:
    return row.cpu_ms_per_recipe <= GOAL_MS and row.cpu_ratio_to_baseline <= GOAL_CLI_RATIO


if __name__ == "__main__":
    main()
