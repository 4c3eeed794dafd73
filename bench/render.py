"""Benchmark: validate (and render) N generated recipes of 20-60 packages in 3-6 layers.

Three measurements on generated projects:

- in process: each recipe file loaded by `load_recipe` (YAML with positions,
  schema, lints, file hashing) and rendered by `render_containerfile`, against
  `yaml.load(text, Loader=yaml.CSafeLoader)` on the same texts in the same
  process. Reported per count, with the growth per recipe (1.00 is linear).
- through the CLI, as a user runs it: one `nestcustom validate` of 1,000
  files, against one `python -c` loop of `yaml.load(f, Loader=CSafeLoader)`
  over the same files (interpreter start-up included on both sides), each run
  alternately several times; the medians are compared. Goal: at most 2.5 times
  the bare parse and at most 2 ms per recipe (the line starting `CLI:`).
- per package: the same 1,000 recipes written with 10, 30 and 60 packages,
  through the CLI as above: the cost of one more package (the slope, from CPU
  time), and whether it is flat (the slope over the upper sizes against the
  lower ones; 1.00 is flat). Goal: the CLI goal still met at 60 packages.

    python bench/render.py [--counts 1000,10000] [--cli-runs 5] [--json]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    # Split the names into layer_count non-empty runs at random cut points.
    cuts = sorted(picks.sample(range(1, count), layer_count - 1))
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


def timed(work: Callable[..., object], *args: object) -> float:
    # gc stays enabled: the collections a real `nestcustom render --all` triggers (it
    # allocates many small objects per recipe) are part of its cost, and disabling gc
    # would hide growth that comes from them. Garbage from earlier sections is collected
    # first so that no section pays for another's.
    gc.collect()
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


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
        ours = timed(run_nestcustom, paths, project)
        base = timed(run_baseline, texts)
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


def measure_cli(count: int, runs: int, packages: int | None = None) -> CliRow:
    """`nestcustom validate FILES` against a bare libyaml loop over FILES, alternately."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        paths, texts = write_project(project, count, packages)
        mean_packages = sum(_install_items(t) for t in texts) / count
        files = [str(p.relative_to(project)) for p in paths]
        ours_argv = [sys.executable, "-m", "nestcustom", "validate", *files]
        base_argv = [sys.executable, "-c", BASELINE_LOOP, *files]
        ours: list[float] = []
        base: list[float] = []
        ours_cpu: list[float] = []
        base_cpu: list[float] = []
        for _ in range(runs):
            for argv, times, cpu in ((ours_argv, ours, ours_cpu), (base_argv, base, base_cpu)):
                started = time.perf_counter()
                child = subprocess.Popen(argv, cwd=project, stdout=subprocess.DEVNULL)
                _, status, usage = os.wait4(child.pid, 0)
                times.append(time.perf_counter() - started)
                child.returncode = os.waitstatus_to_exitcode(status)
                if child.returncode != 0:
                    raise SystemExit(f"{argv[:4]} failed with exit {child.returncode}")
                cpu.append(usage.ru_utime + usage.ru_stime)
    ms = 1000 * statistics.median(ours) / count
    base_ms = 1000 * statistics.median(base) / count
    cpu_ms = 1000 * statistics.median(ours_cpu) / count
    base_cpu_ms = 1000 * statistics.median(base_cpu) / count
    return CliRow(
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


def _install_items(text: str) -> int:
    """The packages a generated recipe installs (in flow or block lists)."""
    lines = text.splitlines()
    flow = sum(line.count(",") + 1 for line in lines if line.startswith("    install: ["))
    return flow + sum(line.startswith("      - ") for line in lines)


@dataclass
class PerPackage:
    """The cost of one package: the same recipes validated at several sizes (CPU time)."""

    sizes: list[CliRow]
    us_per_package: float  # slope from the smallest to the largest size
    baseline_us_per_package: float
    # One package against one package of the bare parse: at most the goal ratio, or larger
    # recipes would drift past it.
    slope_ratio: float
    # The slope over each interval of sizes (10 -> 30, 30 -> 60): equal when the cost per
    # package is flat (the same for the 60th package as for the 10th).
    interval_us_per_package: list[float]
    baseline_interval_us_per_package: list[float]


def measure_per_package(count: int, runs: int) -> PerPackage:
    rows = [measure_cli(count, runs, size) for size in PER_PACKAGE_SIZES]

    def slope(a: CliRow, b: CliRow, baseline: bool = False) -> float:
        ms = (
            (b.baseline_cpu_ms_per_recipe - a.baseline_cpu_ms_per_recipe)
            if baseline
            else (b.cpu_ms_per_recipe - a.cpu_ms_per_recipe)
        )
        return 1000 * ms / (b.packages_per_recipe - a.packages_per_recipe)

    ours = slope(rows[0], rows[-1])
    base = slope(rows[0], rows[-1], baseline=True)
    pairs = list(itertools.pairwise(rows))
    return PerPackage(
        rows,
        ours,
        base,
        ours / base,
        [slope(a, b) for a, b in pairs],
        [slope(a, b, baseline=True) for a, b in pairs],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--counts", default="1000,10000", help="comma-separated recipe counts")
    parser.add_argument("--cli-runs", type=int, default=5, help="runs of each CLI command")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    rows = [measure(count) for count in counts]
    cli = measure_cli(CLI_COUNT, args.cli_runs)
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
        "per_package": asdict(per_package),
        "per_package_goal_met": all(_cli_goal_met(size) for size in per_package.sizes)
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
    print(f"{'recipes':>8} {'ms/recipe':>10} {'baseline':>9} {'ratio':>6}")
    for row in rows:
        print(
            f"{row.recipes:>8} {row.ms_per_recipe:>10.3f} {row.baseline_ms_per_recipe:>9.3f}"
            f" {row.ratio_to_baseline:>6.2f}"
        )
    print(
        f"growth {counts[0]} -> {counts[-1]}: {growth:.2f} per recipe (1.00 is linear); "
        f"goal < {GOAL_MS} ms per recipe: {'met' if result['goal_met'] else 'NOT met'}"
    )
    print(
        f"CLI: `nestcustom validate` of {cli.recipes} files of {cli.packages_per_recipe:.1f} "
        f"packages (mean), median of {cli.runs}: "
        f"{cli.ms_per_recipe:.3f} ms per recipe; `python -c` yaml.load loop: "
        f"{cli.baseline_ms_per_recipe:.3f} ms; ratio {cli.ratio_to_baseline:.2f} "
        f"(goal <= {GOAL_CLI_RATIO} and <= {GOAL_MS} ms: "
        f"{'met' if result['cli_goal_met'] else 'NOT met'})"
    )
    print(
        f"CLI by CPU time: {cli.cpu_ms_per_recipe:.3f} ms per recipe; loop "
        f"{cli.baseline_cpu_ms_per_recipe:.3f} ms; ratio {cli.cpu_ratio_to_baseline:.2f}"
    )
    print(f"per package (the same {CLI_COUNT} recipes at each size, CPU time, median):")
    print(f"{'packages':>9} {'ms/recipe':>10} {'loop':>7} {'ratio':>6}   wall ms  ratio")
    for size in per_package.sizes:
        print(
            f"{size.packages_per_recipe:>9.0f} {size.cpu_ms_per_recipe:>10.3f} "
            f"{size.baseline_cpu_ms_per_recipe:>7.3f} {size.cpu_ratio_to_baseline:>6.2f}"
            f"   {size.ms_per_recipe:>7.3f} {size.ratio_to_baseline:>6.2f}"
        )
    intervals = ", ".join(
        f"{a:.1f} (loop {b:.1f})"
        for a, b in zip(
            per_package.interval_us_per_package,
            per_package.baseline_interval_us_per_package,
            strict=True,
        )
    )
    print(
        f"per package: {per_package.us_per_package:.1f} us, loop "
        f"{per_package.baseline_us_per_package:.1f} us, ratio {per_package.slope_ratio:.2f}; "
        f"by interval of sizes: {intervals}; goal (every size, and one package <= "
        f"{GOAL_CLI_RATIO} of the parse's): {'met' if result['per_package_goal_met'] else 'NOT met'}"
    )


def _cli_goal_met(row: CliRow) -> bool:
    return row.ms_per_recipe <= GOAL_MS and row.ratio_to_baseline <= GOAL_CLI_RATIO


if __name__ == "__main__":
    main()
