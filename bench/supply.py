"""Benchmark: what signing and the SBOM add to a warm `build --push` of the strace example.

In one run on the local universe, alternating who goes first, median of
`--runs` (5) each after one warm-up each:

- baseline: `nestcustom build recipes/nestos-strace.yaml --base MIRROR --tag
  REG/bench/strace:plain-N --push` (every step from the layer cache, the
  registry has every blob: a warm build and push to a new tag);
- supply: the same to `supply-N`, with `--sign KEY --sign-passphrase-file F
  --signature-store file://DIR --sbom`: pushed by digest through the proxy,
  signed, the SPDX SBOM made from the image's rpmdb, validated, pushed and
  signed, then the tag set.

Goal (issue 23): supply / baseline <= 1.10. The warm-up of `supply` is the
first push through the proxy's port, which compresses the base's layers once
(podman's blob cache is per registry host and port).

    NC_UNIVERSE_CACHE=/var/tmp/nc-universe-NAME python -m bench.supply [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import as_installed
from tests.universe.session import universe

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "recipes/nestos-strace.yaml"


def nestcustom(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"nestcustom {' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="signing + SBOM cost on a warm build --push")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    as_installed()
    with tempfile.TemporaryDirectory(prefix="nc-bench-supply-") as tmp, universe() as world:
        work = Path(tmp)
        (work / "pass").write_text("bench passphrase\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nestcustom",
                "keys",
                "generate",
                str(work / "key"),
                "--passphrase-file",
                str(work / "pass"),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        repository = f"{world.registry.host}/bench/strace"
        common = ["build", RECIPE, "--base", world.mirror, "--push", "--no-tls-verify"]
        supply = [
            "--sign",
            str(work / "key" / "signing-key.asc"),
            "--sign-passphrase-file",
            str(work / "pass"),
            "--signature-store",
            f"file://{work / 'sigs'}",
            "--sbom",
        ]

        def plain(n: str) -> float:
            return nestcustom(*common, "--tag", f"{repository}:plain-{n}")

        def signed(n: str) -> float:
            return nestcustom(*common, "--tag", f"{repository}:supply-{n}", *supply)

        warm = (plain("warm"), signed("warm"))  # the layer cache, the proxy's blob cache
        baseline: list[float] = []
        ours: list[float] = []
        for index in range(args.runs):
            if index % 2:
                ours.append(signed(str(index)))
                baseline.append(plain(str(index)))
            else:
                baseline.append(plain(str(index)))
                ours.append(signed(str(index)))
        signatures = sum(1 for _ in (work / "sigs").rglob("signature-*"))
    ratio = statistics.median(ours) / statistics.median(baseline)
    result: dict[str, object] = {
        "baseline_s": statistics.median(baseline),
        "supply_s": statistics.median(ours),
        "ratio": ratio,
        "baseline_runs": baseline,
        "supply_runs": ours,
        "warmup_s": {"baseline": warm[0], "supply": warm[1]},
        "signatures_stored": signatures,
        "load": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"warm build --push of {RECIPE}, median of {args.runs}, load {os.getloadavg()[0]:.1f}")
    print(f"  baseline                  {statistics.median(baseline):.2f} s  {baseline}")
    print(f"  --sign --sbom             {statistics.median(ours):.2f} s  {ours}")
    verdict = "met" if ratio <= 1.10 else "NOT met"
    print(
        f"  ratio {ratio:.3f} (goal <= 1.10: {verdict}); warm-ups {warm[0]:.1f} / {warm[1]:.1f} s"
    )


if __name__ == "__main__":
    main()
