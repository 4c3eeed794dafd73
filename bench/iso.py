"""Benchmark: NewStart base images from the universe's DVD ISOs, and the per-ISO cache.

For each universe DVD (tests/universe/iso: ``bookworm``, rpm 4.18 with sqlite and
zstd payloads; ``el8``, rpm 4.16 with BerkeleyDB, xz payloads and SHA1
signatures, as NewStart V6), in one process, --runs times:

1. first run: the standard variant, with a new, empty cache (`--cache-dir`);
2. second variant: the optimized variant from the same ISO, the cache now
   holding the ISO's checked bootstrap, metadata and signature verdicts;
3. the same optimized build without the cache (`--no-cache`), to tell what
   the cache saves from what the smaller variant saves.

Goals: second variant / first run <= 0.6 (the cache); optimized / standard
image size <= 0.75; every build of one variant gives one image ID.
Medians are reported, with every phase. The builds go into a podman storage
of their own (a temporary graphroot named by CONTAINERS_STORAGE_CONF), so
every layer import is cold; --shared-storage measures in the machine's.

    python -m bench.iso [--runs 3] [--profile bookworm|el8 ...] [--json] [--shared-storage]
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


def build(
    iso: Path, variant: str, env: dict[str, str], cache: Path | None
) -> tuple[float, dict[str, object]]:
    """One `base from-iso` run, timed from process start to tagged image; the image is
    removed again, so the next build imports its layer cold."""
    tag = f"localhost/nestcustom-bench/newstart-{variant}-{uuid.uuid4().hex[:8]}:latest"
    caching = ["--cache-dir", str(cache)] if cache else ["--no-cache"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", "base", "from-iso", str(iso), "--variant", variant,
         "--tag", tag, "--json", *caching],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"from-iso {variant} failed:\n{done.stderr[-2000:]}")
    report: dict[str, object] = json.loads(done.stdout)
    for image in (tag, str(report["image_id"])):
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True, check=False, env=env)
    return wall, report


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom base from-iso benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="append", choices=("bookworm", "el8"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--shared-storage", action="store_true", help="build in the machine's podman storage"
    )
    args = parser.parse_args()
    summary: dict[str, object] = {}
    for profile in args.profile or ["bookworm", "el8"]:
        iso = build_iso("treeinfo", profile=profile)
        with contextlib.ExitStack() as stack:
            env = (
                dict(os.environ) if args.shared_storage else stack.enter_context(private_storage())
            )
            summary[profile] = _measure(iso.path, args.runs, env)
        if not args.json:
            _print(profile, iso.path, args, summary[profile])  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(summary, indent=2))


ROWS = (
    ("first", "standard", True),
    ("second", "optimized", True),
    ("uncached", "optimized", False),
)


def _measure(iso: Path, runs: int, env: dict[str, str]) -> dict[str, object]:
    walls: dict[str, list[float]] = {row: [] for row, _, _ in ROWS}
    phases: dict[str, list[dict[str, float]]] = {row: [] for row, _, _ in ROWS}
    ids: dict[str, set[str]] = {"standard": set(), "optimized": set()}
    reports: dict[str, dict[str, object]] = {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="nc-bench-iso-cache-", dir="/var/tmp") as tmp:
            for row, variant, cached in ROWS:
                wall, report = build(iso, variant, env, Path(tmp) / "cache" if cached else None)
                walls[row].append(wall)
                seconds = report["seconds"]
                assert isinstance(seconds, dict)
                phases[row].append(seconds)
                ids[variant].add(str(report["image_id"]))
                reports[row] = report
    ratios = [s / f for s, f in zip(walls["second"], walls["first"], strict=True)]
    return {
        "packages": {v: len(reports[r]["packages"]) for r, v, _ in ROWS[:2]},  # type: ignore[arg-type]
        "image_size": {v: reports[r]["image_size"] for r, v, _ in ROWS[:2]},
        "size_ratio": int(str(reports["second"]["image_size"]))
        / int(str(reports["first"]["image_size"])),
        "wall_s": {row: statistics.median(values) for row, values in walls.items()},
        "cache_ratio": statistics.median(ratios),
        "from_cache": reports["second"]["from_cache"],
        "image_ids": {variant: sorted(found) for variant, found in ids.items()},
        "phases_s": {
            row: {
                key: round(statistics.median(float(p.get(key, 0)) for p in rows), 2)
                for key in rows[0]
            }
            for row, rows in phases.items()
        },
    }


def _print(profile: str, iso: Path, args: argparse.Namespace, row: dict[str, object]) -> None:
    storage = "the machine's" if args.shared_storage else "a private, empty"
    walls, phases = row["wall_s"], row["phases_s"]
    assert isinstance(walls, dict) and isinstance(phases, dict)
    print(
        f"{profile}: ISO {iso.name} ({iso.stat().st_size / 1e6:.0f} MB), {args.runs} runs, "
        f"in {storage} podman storage; packages {row['packages']}"
    )
    print(f"  first run (standard, empty cache)        {walls['first']:.2f} s")
    print(f"  second variant (optimized, cache warm)   {walls['second']:.2f} s")
    print(f"  optimized without the cache              {walls['uncached']:.2f} s")
    print(
        f"  second / first = {row['cache_ratio']:.2f} (goal <= 0.6); from the cache: {row['from_cache']}"
    )
    print(f"  optimized / standard image size = {row['size_ratio']:.2f} (goal <= 0.75)")
    ids = row["image_ids"]
    assert isinstance(ids, dict)
    same = all(len(v) == 1 for v in ids.values())
    print(f"  one image ID per variant in every run, cached or not: {'yes' if same else 'no'}")
    for name, values in phases.items():
        print(f"  phases, {name}: {values}")


if __name__ == "__main__":
    main()
