"""Benchmark: NewStart base images from the universe's DVD ISO.

On the realistic universe ISO (tests/universe/iso: a Debian userland
repackaged as ~200 signed RPMs, @core of ~180 packages, 250 MB installed):

1. size: the optimized image's size over the standard image's (goal <= 0.75);
2. time: the whole `nestcustom base from-iso ISO --tag REF` (process start to
   tagged image) over the package install step alone (the rpm transaction that
   writes the root, measured inside the same run; goal <= 1.5: reading the ISO,
   resolving, extracting, the bootstrap, cleaning, the tarball and writing the
   image together cost at most half of what installing costs).

Each variant is built three times; medians are reported, with every phase.

    python -m bench.iso [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.universe.iso.build import build_iso

ROOT = Path(__file__).resolve().parent.parent


def build(iso: Path, variant: str) -> tuple[float, dict[str, object]]:
    tag = f"localhost/nestcustom-bench/newstart-{variant}-{uuid.uuid4().hex[:8]}:latest"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", "base", "from-iso", str(iso), "--variant", variant,
         "--tag", tag, "--json"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"from-iso {variant} failed:\n{done.stderr[-2000:]}")
    subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)
    report: dict[str, object] = json.loads(done.stdout)
    return wall, report


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom base from-iso benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    iso = build_iso("treeinfo")
    results: dict[str, dict[str, object]] = {}
    for variant in ("standard", "optimized"):
        walls, installs, phases = [], [], []
        ids: set[str] = set()
        report: dict[str, object] = {}
        for _ in range(args.runs):
            wall, report = build(iso.path, variant)
            ids.add(str(report["image_id"]))
            seconds = report["seconds"]
            assert isinstance(seconds, dict)
            walls.append(wall)
            installs.append(float(seconds["install_rpm"]))
            phases.append(seconds)
        results[variant] = {
            "image_size": report["image_size"],
            "install_size": report["install_size"],
            "packages": len(report["packages"]),  # type: ignore[arg-type]
            "image_ids": sorted(ids),  # one per variant when every run gave the same image
            "wall_s": statistics.median(walls),
            "install_s": statistics.median(installs),
            "ratio": statistics.median(w / i for w, i in zip(walls, installs, strict=True)),
            "phases_s": {
                key: round(statistics.median(float(p.get(key, 0)) for p in phases), 2)
                for key in phases[0]
            },
        }
    standard, optimized = results["standard"], results["optimized"]
    size_ratio = int(str(optimized["image_size"])) / int(str(standard["image_size"]))
    summary = {"iso": iso.path.name, "size_ratio": size_ratio, "variants": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"ISO {iso.path.name} ({iso.path.stat().st_size / 1e6:.0f} MB), {args.runs} runs each")
    for variant, row in results.items():
        print(
            f"  {variant:9} {row['packages']} packages, image {int(str(row['image_size'])) / 1e6:.0f} MB, "
            f"whole {row['wall_s']:.1f} s / install {row['install_s']:.1f} s = {row['ratio']:.2f} "
            "(goal <= 1.5)"
        )
        print(f"            phases: {row['phases_s']}")
    print(f"  optimized / standard image size = {size_ratio:.2f} (goal <= 0.75)")
    same = all(len(r["image_ids"]) == 1 for r in results.values())  # type: ignore[arg-type]
    print(f"  the same image ID in every run of a variant: {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
