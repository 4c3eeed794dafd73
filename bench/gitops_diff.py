"""Benchmark: `nestcustom diff` of two ~500-package images straight from the registry.

Two images are built in the local universe and pushed to its registry: the
fixture NestOS base plus one layer of PACKAGES generated packages (A), and the
same recipe from a second repository where 10 of them are upgraded (with
changelogs), 3 removed and 3 added (B). Then, in this process:

- `nestcustom diff docker://A docker://B --format json`: wall time, and the
  bytes it downloaded (its own count: only the layers that hold the RPM
  database should come over the network);
- baseline: `skopeo copy docker://X dir:...` of both images, the least any
  diff that first pulls the images must transfer (no database read at all);
- for reference, the same diff from podman's local storage.

Medians of --runs runs (alternating order).

    python -m bench.gitops_diff [--packages 500] [--size 40000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.gitops.helpers import pinned
from tests.gitops.rpms import Pkg, served
from tests.universe.base.build import build_base_image
from tests.universe.registry import run_registry

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ("Tue Nov 10 2026", "Bench Packager <bench@example.com> - 2.0-1", "- bench upgrade")
OLD_ENTRY = ("Mon Jan 05 2026", "Bench Packager <bench@example.com> - 1.0-1", "- first")


def package_sets(count: int, size: int) -> tuple[list[Pkg], list[Pkg]]:
    names = [f"nc-bench-{i:03d}" for i in range(count)]
    old = [Pkg(n, "1.0", "1", (OLD_ENTRY,), size) for n in names]
    upgraded, removed = set(names[:10]), set(names[10:13])
    new = [
        Pkg(n, "2.0", "1", (ENTRY, OLD_ENTRY), size) if n in upgraded else Pkg(n, size=size)
        for n in names
        if n not in removed
    ]
    new += [Pkg(f"nc-bench-new-{i}", size=size) for i in range(3)]
    return old, new


def recipe(base: str, url: str, packages: list[Pkg]) -> str:
    names = ", ".join(p.name for p in packages)
    return (
        "name: bench-diff\n"
        "description: the diff benchmark's image\n"
        f'base: {{image: "{base}"}}\n'
        f'repos:\n  - {{id: ncbench, baseurl: "{url}", gpgcheck: false}}\n'
        f"layers:\n  - {{name: packages, install: [{names}]}}\n"
    )


def nestcustom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"nestcustom {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def timed_diff(a: str, b: str, *extra: str) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = nestcustom("diff", a, b, "--format", "json", *extra, cwd=ROOT)
    return time.perf_counter() - started, json.loads(done.stdout)


def timed_copy(references: list[str], scratch: Path) -> tuple[float, int]:
    """Wall time and bytes of `skopeo copy` of every image (all layers) into dir: layouts."""
    target = scratch / uuid.uuid4().hex
    target.mkdir()
    started = time.perf_counter()
    for number, reference in enumerate(references):
        subprocess.run(
            ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{reference}",
             f"dir:{target / str(number)}"],
            check=True, capture_output=True,
        )  # fmt: skip
    wall = time.perf_counter() - started
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    shutil.rmtree(target)
    return wall, size


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom diff from a registry")
    parser.add_argument("--packages", type=int, default=500)
    parser.add_argument("--size", type=int, default=40000, help="bytes of each package's file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nc-bench-diff-", dir="/var/tmp") as tmp:
        scratch = Path(tmp)
        base_ref = build_base_image("sp2", scratch / "base")
        old, new = package_sets(args.packages, args.size)
        project = scratch / "project"
        (project / "recipes").mkdir(parents=True)
        path = project / "recipes" / "bench-diff.yaml"
        with (
            pinned(base_ref) as base,
            run_registry(scratch / "registry") as registry,
            served(old, scratch / "repo-a", scratch / "work-a") as url_a,
            served(new, scratch / "repo-b", scratch / "work-b") as url_b,
        ):
            refs = [f"{registry.host}/bench/diff:{t}" for t in ("a", "b")]
            try:
                build_times = []
                for reference, url, chosen in ((refs[0], url_a, old), (refs[1], url_b, new)):
                    path.write_text(recipe(base, url, chosen))
                    started = time.perf_counter()
                    nestcustom("build", str(path), "--tag", reference, "--push", "--no-tls-verify",
                               cwd=project)  # fmt: skip
                    build_times.append(time.perf_counter() - started)
                remote = [f"docker://{r}" for r in refs]
                local = [f"containers-storage:{r}" for r in refs]
                diff_walls, copy_walls, local_walls = [], [], []
                report: dict[str, object] = {}
                copied = 0
                for run in range(args.runs):
                    steps = ["diff", "copy"] if run % 2 == 0 else ["copy", "diff"]
                    for step in steps:
                        if step == "diff":
                            wall, report = timed_diff(*remote, "--no-tls-verify")
                            diff_walls.append(wall)
                        else:
                            wall, copied = timed_copy(refs, scratch)
                            copy_walls.append(wall)
                    local_walls.append(timed_diff(*local)[0])
            finally:
                subprocess.run(["podman", "rmi", "-f", *refs], capture_output=True, check=False)
    sides: list[dict[str, Any]] = [report["a"], report["b"]]  # type: ignore[list-item]
    downloaded = sum(int(s["downloaded"]) for s in sides)
    layers = sum(len(s["layers"]) for s in sides)
    read = sum(int(s["layers_read"]) for s in sides)
    packages = [int(s["packages"]) for s in sides]
    changes = report["changes"]
    assert isinstance(changes, list)
    kinds = {k: sum(c["kind"] == k for c in changes) for k in ("added", "removed", "upgraded")}
    result = {
        "packages": packages,
        "changes": kinds,
        "build_s": [round(t, 1) for t in build_times],
        "diff_registry_s": round(statistics.median(diff_walls), 2),
        "diff_registry_bytes": downloaded,
        "layers_read": f"{read} of {layers}",
        "skopeo_copy_s": round(statistics.median(copy_walls), 2),
        "skopeo_copy_bytes": copied,
        "diff_local_s": round(statistics.median(local_walls), 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    mb = 1_000_000
    print(f"images: {packages[0]} and {packages[1]} packages; changes: {kinds}")
    print(f"layers read: {read} of {layers}")
    for name, side in zip("AB", sides, strict=True):
        sizes = [int(layer["size"]) for layer in side["layers"]]
        print(
            f"{name}: {len(sizes)} layers, {sum(sizes) / mb:.1f} MB compressed, "
            f"the largest {max(sizes) / mb:.1f} MB"
        )
    print("| case | nestcustom diff (registry) | skopeo copy of both | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| time | {result['diff_registry_s']} s | {result['skopeo_copy_s']} s "
        f"| {statistics.median(diff_walls) / statistics.median(copy_walls):.2f} |"
    )
    print(
        f"| bytes | {downloaded / mb:.1f} MB | {copied / mb:.1f} MB | {downloaded / copied:.2f} |"
    )
    print(f"diff from local storage: {result['diff_local_s']} s")


if __name__ == "__main__":
    main()
