"""Benchmark: validate (and render) N generated recipes of 5 layers each.

Two measurements on the same generated project:

- in process: each recipe file loaded by `load_recipe` (YAML with positions,
  schema, lints, file hashing) and rendered by `render_containerfile`, against
  `yaml.load(text, Loader=yaml.CSafeLoader)` on the same texts in the same
  process. Reported per count, with the growth per recipe (1.00 is linear).
- through the CLI, as a user runs it: one `nestcustom validate` of all the
  files, against one `python -c` loop of `yaml.load(f, Loader=CSafeLoader)`
  over the same files (interpreter start-up included on both sides), each run
  alternately several times; the medians are compared. Goal: at most 2.5 times
  the bare parse and at most 2 ms per recipe.

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
LAYERS = 5
PACKAGES = [
    "strace", "tcpdump", "jq", "lsof", "htop", "gdb", "perf", "sysstat", "iotop", "nmap",
    "vim-enhanced", "tmux", "gcc-c++", "python3.11", "perl-Net_SSLeay", "iproute-tc",
    "bpftrace", "ethtool", "nvme-cli", "podman-remote", "bash-completion", "rsync",
]  # fmt: skip
UNITS = ["chronyd.service", "examplecorp-agent.service", "getty@tty2.service", "fstrim.timer"]
FILES = {  # src under the project -> (dest, mode)
    "files/motd": ("/etc/motd", "0644"),
    "files/agent/agent.conf": ("/etc/examplecorp/agent.conf", "0640"),
    "files/sysctl.conf": ("/etc/sysctl.d/90-examplecorp.conf", "0644"),
}


def recipe_text(index: int, rng: random.Random) -> str:
    """A realistic recipe: 5 layers of 3-8 changes, a repo, a file, units, labels, tests."""
    layers = []
    for layer in range(LAYERS):
        names = rng.sample(PACKAGES, rng.randint(3, 8))
        install = [
            f"{n} >= {rng.randint(1, 9)}.{rng.randint(0, 20)}" if rng.random() < 0.2 else n
            for n in names
        ]
        text = f"  - name: layer-{layer}\n    description: generated layer {layer}\n"
        text += f"    install: [{', '.join(install)}]\n"
        if layer == 0:
            text += f"    remove: [toolbox, nano-{index % 7}]\n"
        if layer == LAYERS - 1:
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
        "    present: [strace]\n"
        "    absent: [toolbox]\n"
    )


def write_project(root: Path, count: int) -> tuple[list[Path], list[str]]:
    """Recipes r0..r{count-1}.yaml under root/recipes, and their texts."""
    rng = random.Random(count)
    for src in FILES:
        (root / src).parent.mkdir(parents=True, exist_ok=True)
        (root / src).write_text(f"# {src}\ninterval = 60\n")
    (root / "recipes").mkdir()
    paths, texts = [], []
    for index in range(count):
        path = root / "recipes" / f"r{index}.yaml"
        text = recipe_text(index, rng)
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
    runs: int
    ms_per_recipe: float  # median over the runs, start-up included
    baseline_ms_per_recipe: float
    ratio_to_baseline: float
    # The same from the CPU time (user + system) each process used: what the work costs,
    # undisturbed by other load on the machine, which stretches wall time.
    cpu_ms_per_recipe: float
    baseline_cpu_ms_per_recipe: float
    cpu_ratio_to_baseline: float


def measure_cli(count: int, runs: int) -> CliRow:
    """`nestcustom validate FILES` against a bare libyaml loop over FILES, alternately."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        paths, _ = write_project(project, count)
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
    return CliRow(count, runs, ms, base_ms, ms / base_ms, cpu_ms, base_cpu_ms, cpu_ms / base_cpu_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--counts", default="1000,10000", help="comma-separated recipe counts")
    parser.add_argument("--cli-runs", type=int, default=5, help="runs of each CLI command")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    rows = [measure(count) for count in counts]
    cli = measure_cli(CLI_COUNT, args.cli_runs)
    growth = rows[-1].ms_per_recipe / rows[0].ms_per_recipe
    result = {
        "python": platform.python_version(),
        "libyaml": LIBYAML,
        "baseline": f"yaml.load(text, Loader={BaselineLoader.__name__})",
        "goal_ms_per_recipe": GOAL_MS,
        "layers_per_recipe": LAYERS,
        "rows": [asdict(row) for row in rows],
        "growth_per_recipe": growth,
        "goal_met": all(row.ms_per_recipe < GOAL_MS for row in rows),
        "cli": asdict(cli),
        "cli_goal_met": cli.ms_per_recipe <= GOAL_MS and cli.ratio_to_baseline <= GOAL_CLI_RATIO,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"validate + render, {LAYERS} layers per recipe; Python {result['python']}")
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
        f"CLI: `nestcustom validate` of {cli.recipes} files, median of {cli.runs}: "
        f"{cli.ms_per_recipe:.3f} ms per recipe; `python -c` yaml.load loop: "
        f"{cli.baseline_ms_per_recipe:.3f} ms; ratio {cli.ratio_to_baseline:.2f} "
        f"(goal <= {GOAL_CLI_RATIO} and <= {GOAL_MS} ms: "
        f"{'met' if result['cli_goal_met'] else 'NOT met'})"
    )
    print(
        f"CLI by CPU time: {cli.cpu_ms_per_recipe:.3f} ms per recipe; loop "
        f"{cli.baseline_cpu_ms_per_recipe:.3f} ms; ratio {cli.cpu_ratio_to_baseline:.2f}"
    )


if __name__ == "__main__":
    main()
