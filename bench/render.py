"""Benchmark: validate + render N generated recipes of 5 layers each.

Prints milliseconds per recipe at 1,000 and 10,000 recipes, the growth ratio
between them (1.0 = linear), and the ratio against a baseline measured in the
same process: parsing the same texts with PyYAML's fastest loader alone.

    python bench/render.py [--counts 1000,10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nestcustom.recipe import load_recipe
from nestcustom.render import render_containerfile

try:
    from yaml import CSafeLoader as FastLoader

    LIBYAML = True
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as FastLoader  # type: ignore[assignment]

    LIBYAML = False

GOAL_MS = 2.0
WORDS = [
    "strace",
    "tcpdump",
    "jq",
    "lsof",
    "htop",
    "gdb",
    "perf",
    "sysstat",
    "iotop",
    "nmap",
    "vim",
]


def recipe_text(index: int, rng: random.Random) -> str:
    layers = []
    for layer in range(5):
        packages = rng.sample(WORDS, rng.randint(3, 8))
        layers.append(f"  - name: layer-{layer}\n    install: [{', '.join(packages)}]\n")
    return (
        f"name: image-{index}\n"
        f"description: generated recipe {index}\n"
        "arch: x86_64\n"
        'base:\n  image: hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0-x86_64\n  rpm-ostree: "2022.16"\n'
        'repos:\n  - {id: tools, baseurl: "https://repo.example.com/tools/", gpgkey: "https://repo.example.com/k"}\n'
        "layers:\n"
        + "".join(layers)
        + 'files:\n  - {src: files/motd, dest: /etc/motd, mode: "0644"}\n'
        "systemd: {enable: [chronyd.service], disable: [zincati.service]}\n"
        "labels: {org.opencontainers.image.vendor: Example Corp}\n"
    )


def write_project(root: Path, count: int) -> list[Path]:
    rng = random.Random(count)
    (root / "files").mkdir()
    (root / "files" / "motd").write_text("hello\n")
    recipes = root / "recipes"
    recipes.mkdir()
    paths = []
    for index in range(count):
        path = recipes / f"r{index}.yaml"
        path.write_text(recipe_text(index, rng))
        paths.append(path)
    return paths


def time_nestcustom(paths: list[Path], project: Path) -> float:
    started = time.perf_counter()
    for path in paths:
        recipe = load_recipe(path, project=project).recipe
        render_containerfile(recipe, f"containerfiles/{recipe.name}")
    return time.perf_counter() - started


def time_baseline(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        yaml.load(path.read_bytes(), Loader=FastLoader)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    rows = []
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            paths = write_project(project, count)
            time_nestcustom(paths[:50], project)  # warm caches: schema, validator, imports
            ours = time_nestcustom(paths, project)
            base = time_baseline(paths)
        rows.append(
            {
                "recipes": count,
                "ms_per_recipe": 1000 * ours / count,
                "baseline_ms_per_recipe": 1000 * base / count,
                "ratio_to_baseline": ours / base,
            }
        )
    growth = rows[-1]["ms_per_recipe"] / rows[0]["ms_per_recipe"] if len(rows) > 1 else 1.0
    result = {"libyaml": LIBYAML, "goal_ms": GOAL_MS, "rows": rows, "growth": growth}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"validate + render, 5 layers per recipe (libyaml: {LIBYAML}); goal < {GOAL_MS} ms per recipe"
    )
    print(f"{'recipes':>8} {'ms/recipe':>10} {'yaml-only':>10} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['recipes']:>8} {row['ms_per_recipe']:>10.3f} {row['baseline_ms_per_recipe']:>10.3f} "
            f"{row['ratio_to_baseline']:>6.1f}"
        )
    print(f"growth {counts[0]} -> {counts[-1]}: {growth:.2f} per recipe (1.00 is linear)")


if __name__ == "__main__":
    main()
