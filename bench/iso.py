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
The builds go into a podman storage of their own (a temporary graphroot named
by CONTAINERS_STORAGE_CONF), so every run imports its layer cold: in the
machine's storage a layer that an earlier build or test left there is reused
and its import skipped, which made some runs look seconds faster than a
user's first build. --shared-storage measures in the machine's storage.

    python -m bench.iso [--runs 3] [--json] [--shared-storage]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.universe.iso.build import build_iso

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def private_storage() -> Iterator[dict[str, str]]:
    """An environment whose podman uses a new, empty storage, removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="nc-bench-iso-", dir="/var/tmp"))
    conf = top / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{top / "root"}"\nrunroot = "{top / "run"}"\n'
    )
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
    try:
        yield env
    finally:
        # The overlay driver may have made its home a (private) mount point.
        for mounted in reversed(_mounts_under(top)):
            subprocess.run(["umount", mounted], capture_output=True, check=False)
        shutil.rmtree(top, ignore_errors=True)


def _mounts_under(top: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted(p for p in points if p == str(top) or p.startswith(f"{top}/"))


def build(iso: Path, variant: str, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    tag = f"localhost/nestcustom-bench/newstart-{variant}-{uuid.uuid4().hex[:8]}:latest"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", "base", "from-iso", str(iso), "--variant", variant,
         "--tag", tag, "--json"],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"from-iso {variant} failed:\n{done.stderr[-2000:]}")
    report: dict[str, object] = json.loads(done.stdout)
    report["load_s"] = _load_alone(tag, env)
    return wall, report


def _load_alone(tag: str, env: dict[str, str]) -> float:
    """Seconds `podman load` takes to import the image just built, cold (the lower bound
    of the image phase: podman's own work, with no tar and no API upload)."""
    with tempfile.TemporaryDirectory(prefix="nc-bench-iso-save-", dir="/var/tmp") as tmp:
        archive = Path(tmp) / "image.tar"
        podman = ["podman", "--log-level=error"]
        subprocess.run([*podman, "save", "-q", "-o", str(archive), tag], env=env, check=True)
        subprocess.run([*podman, "rmi", "-f", tag], capture_output=True, check=True, env=env)
        started = time.perf_counter()
        loaded = subprocess.run(
            [*podman, "load", "-q", "-i", str(archive)], capture_output=True, text=True, env=env
        )
        seconds = time.perf_counter() - started
        if loaded.returncode != 0:
            raise RuntimeError(f"podman load failed: {loaded.stderr[-500:]}")
        image = loaded.stdout.strip().rsplit(":", 1)[-1]
        subprocess.run([*podman, "rmi", "-f", image], capture_output=True, check=False, env=env)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom base from-iso benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--shared-storage", action="store_true", help="build in the machine's podman storage"
    )
    args = parser.parse_args()
    iso = build_iso("treeinfo")
    with contextlib.ExitStack() as stack:
        env = dict(os.environ) if args.shared_storage else stack.enter_context(private_storage())
        results = _measure(iso.path, args.runs, env)
    _print(iso.path, args, results)


def _measure(iso: Path, runs: int, env: dict[str, str]) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for variant in ("standard", "optimized"):
        walls, installs, loads, phases = [], [], [], []
        ids: set[str] = set()
        report: dict[str, object] = {}
        for _ in range(runs):
            wall, report = build(iso, variant, env)
            ids.add(str(report["image_id"]))
            seconds = report["seconds"]
            assert isinstance(seconds, dict)
            walls.append(wall)
            installs.append(float(seconds["install_rpm"]))
            loads.append(float(str(report["load_s"])))
            phases.append(seconds)
        results[variant] = {
            "image_size": report["image_size"],
            "install_size": report["install_size"],
            "packages": len(report["packages"]),  # type: ignore[arg-type]
            "image_ids": sorted(ids),  # one per variant when every run gave the same image
            "wall_s": statistics.median(walls),
            "install_s": statistics.median(installs),
            "podman_load_s": statistics.median(loads),
            "ratio": statistics.median(w / i for w, i in zip(walls, installs, strict=True)),
            "phases_s": {
                key: round(statistics.median(float(p.get(key, 0)) for p in phases), 2)
                for key in phases[0]
            },
        }
    return results


def _print(iso: Path, args: argparse.Namespace, results: dict[str, dict[str, object]]) -> None:
    standard, optimized = results["standard"], results["optimized"]
    size_ratio = int(str(optimized["image_size"])) / int(str(standard["image_size"]))
    storage = "the machine's" if args.shared_storage else "a private, empty"
    summary = {"iso": iso.name, "size_ratio": size_ratio, "storage": storage, "variants": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"ISO {iso.name} ({iso.stat().st_size / 1e6:.0f} MB), {args.runs} runs each, "
        f"in {storage} podman storage"
    )
    for variant, row in results.items():
        print(
            f"  {variant:9} {row['packages']} packages, image {int(str(row['image_size'])) / 1e6:.0f} MB, "
            f"whole {row['wall_s']:.1f} s / install {row['install_s']:.1f} s = {row['ratio']:.2f} "
            "(goal <= 1.5)"
        )
        print(f"            phases: {row['phases_s']}")
        print(
            f"            `podman load` of the finished image alone, cold: {row['podman_load_s']:.1f} s"
        )
    print(f"  optimized / standard image size = {size_ratio:.2f} (goal <= 0.75)")
    same = all(len(r["image_ids"]) == 1 for r in results.values())  # type: ignore[arg-type]
    print(f"  the same image ID in every run of a variant: {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
