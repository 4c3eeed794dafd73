"""Benchmark: what a host downloads to take an update of a custom image (issue 26).

On the local universe, one run: a four-layer recipe on the universe's NestOS mirror
(`nc-hello`; `strace`; `jq`; `nc-libgreet`) is built and pushed to a tag, then the same
recipe with one small package (`nc-optapp`) added to its first layer is built and pushed
to the same tag. `build --push --json` says what a host running the first image
downloads to run the second (`update`: the second image's layers the first lacks, by
compressed digest, as ostree-ext fetches them: contract section 6). The baseline is the
change itself: the compressed size of the added package's RPM (its payload and
headers), the least any update could move.

Goal (issue 26): downloaded / (changed package + rpm-database layer) <= 1.5. Until
images are rechunked there is no rpm-database layer of its own, so the ratio here is
against the package alone and says how far today's layout is from the goal.

    NC_UNIVERSE_CACHE=/var/tmp/nc-universe-NAME python -m bench.updates [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import as_installed
from tests.universe.session import universe

ROOT = Path(__file__).resolve().parent.parent
LAYERS = (["nc-hello"], ["strace"], ["jq"], ["nc-libgreet"])
ADDED = "nc-optapp"


def recipe(mirror: str, first: list[str]) -> str:
    layers = [first, *LAYERS[1:]]
    return (
        "name: updates\n"
        "description: issue 26's benchmark recipe\n"
        f'base: {{image: "{mirror}"}}\n'
        "layers:\n"
        + "".join(
            f"  - {{name: layer{i + 1}, install: [{', '.join(packages)}]}}\n"
            for i, packages in enumerate(layers)
        )
    )


def build_push(project: Path, reference: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "build",
            "recipes/updates.yaml",
            "--tag",
            reference,
            "--push",
            "--no-tls-verify",
            "--json",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"build --push failed:\n{done.stderr[-3000:]}")
    entry: dict[str, Any] = json.loads(done.stdout)["images"][0]
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description="bytes a host downloads for an update")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    as_installed()
    with tempfile.TemporaryDirectory(prefix="nc-bench-updates-") as tmp, universe() as world:
        project = Path(tmp)
        (project / "recipes").mkdir()
        path = project / "recipes" / "updates.yaml"
        reference = f"{world.registry.host}/bench/updates:latest"
        path.write_text(recipe(world.mirror, list(LAYERS[0])))
        first = build_push(project, reference)
        path.write_text(recipe(world.mirror, [*LAYERS[0], ADDED]))
        second = build_push(project, reference)
        added_rpm = world.repo.path / f"{world.repo.packages[ADDED]}.rpm"
        payload = added_rpm.stat().st_size
    update = second["update"]
    result: dict[str, object] = {
        "case": f"{ADDED} added to the first of {len(LAYERS)} layers",
        "downloaded_bytes": update["bytes"],
        "layers_fetched": update["layers"],
        "layers": update["of"],
        "changed_package_bytes": payload,
        "ratio": update["bytes"] / payload,
        "first": first["digest"],
        "second": second["digest"],
        "load": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['case']}, load {result['load']:.1f}")
    print(
        f"  a host on the first image downloads {update['layers']} of {update['of']} layers, "
        f"{update['bytes']} bytes compressed"
    )
    print(f"  the added package's RPM: {payload} bytes")
    print(f"  ratio {result['ratio']:.1f} (goal <= 1.5 against package + rpm-database layer)")


if __name__ == "__main__":
    main()
