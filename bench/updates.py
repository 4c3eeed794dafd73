"""Benchmark: what a host downloads to take an update of a custom image (issue 26).

On the local universe, in one run, the plain layout (one layer per recipe step) and
`rechunk: true` side by side, each in its own repository of the local registry:

1. **A package added.** A four-layer recipe on the universe's NestOS mirror (`nc-hello`;
   `strace`; `jq`; `nc-libgreet`) is built and pushed, then the same recipe with one small
   package (`nc-optapp`) added to its first layer. `build --push --json` says what a host
   running the first image downloads to run the second (`update`: the second image's
   layers the first lacks, by compressed digest, as ostree-ext fetches them: contract
   section 6). Baseline: the added package's RPM (the least any update could move) plus,
   rechunked, the rpm-database layer (the top chunk), as the issue states the goal.
2. **The base updated, the recipe unchanged.** The mirror's tag moves to a new base with
   one more package (`nc-scriptlet` installed by rpm); the recipe is built again. Counted:
   the custom layers a host downloads (the base's own new layer left out).
3. **Build time.** Each layout's first build with `--no-cache` (cold), and the same build
   again after its tag is removed (warm: every step from podman's cache), as ratios of
   rechunked to plain.

Goals (issue 26): case 1 downloaded <= 1.5 x (package + rpm-database layer); case 2 the
custom part re-downloaded at most the rpm-database layer; build time rechunked at most
1.2 x plain, cold and warm.

    NC_UNIVERSE_CACHE=/var/tmp/nc-universe-NAME python -m bench.updates [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import as_installed
from tests.universe.session import universe

ROOT = Path(__file__).resolve().parent.parent
LAYERS = (["nc-hello"], ["strace"], ["jq"], ["nc-libgreet"])
ADDED = "nc-optapp"
BASE_ADDED = "nc-scriptlet"
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"


def recipe(mirror: str, first: list[str], rechunk: bool) -> str:
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
        + ("rechunk: true\n" if rechunk else "")
    )


def build_push(project: Path, reference: str, *more: str) -> tuple[dict[str, Any], float]:
    return build(project, reference, "--push", "--no-tls-verify", *more)


def build(project: Path, reference: str, *more: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", "build", "recipes/updates.yaml", "--tag", reference,
         "--json", *more],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"build {' '.join(more)} failed:\n{done.stderr[-3000:]}")
    entry: dict[str, Any] = json.loads(done.stdout)["images"][0]
    return entry, seconds


def layers_of(host: str, repository: str, digest: str) -> list[tuple[str, int]]:
    """(digest, compressed size) of the manifest's layers, as the registry serves them."""
    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_TYPES}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        manifest = json.load(answer)
    return [(layer["digest"], int(layer["size"])) for layer in manifest["layers"]]


def podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {done.stderr[-1000:]}")
    return done.stdout


def update_base(mirror: str, rpm: Path) -> None:
    """Move the mirror's tag to the base with one more package, and push it."""
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        (context / "added.rpm").write_bytes(rpm.read_bytes())
        (context / "Containerfile").write_text(
            f"FROM {mirror}\nCOPY added.rpm /tmp/added.rpm\n"
            # rpm leaves its lock file; a composed base (rpm-ostree) ships none, and the
            # recipe's build would remove it: a whiteout only this stand-in base causes.
            "RUN rpm -i --nodeps /tmp/added.rpm && rm /tmp/added.rpm /usr/share/rpm/.rpm.lock\n"
        )
        podman("build", "-q", "--timestamp", "0", "-t", mirror, str(context))
    podman("push", "-q", "--tls-verify=false", mirror)


def run_layout(world: Any, project: Path, rechunk: bool) -> dict[str, Any]:
    name = "rechunk" if rechunk else "plain"
    repository = f"bench/updates-{name}"
    reference = f"{world.registry.host}/{repository}:latest"
    path = project / "recipes" / "updates.yaml"
    path.write_text(recipe(world.mirror, list(LAYERS[0]), rechunk))
    first, cold = build_push(project, reference, "--no-cache")
    # Warm: every step from podman's cache. Not pushed: the registry's copy would let the
    # build skip everything, rechunk included.
    podman("untag", reference)
    _, warm = build(project, reference)
    path.write_text(recipe(world.mirror, [*LAYERS[0], ADDED], rechunk))
    second, _ = build_push(project, reference)
    layers = layers_of(world.registry.host, repository, second["digest"])
    return {
        "layout": name,
        "cold_seconds": cold,
        "warm_seconds": warm,
        "first": first["digest"],
        "second": second["digest"],
        "downloaded_bytes": second["update"]["bytes"],
        "layers_fetched": second["update"]["layers"],
        "layers": second["update"]["of"],
        "top_layer_bytes": layers[-1][1],
        "custom_layers": len(layers) - len(layers_of(world.registry.host, *_split(world.mirror))),
    }


def base_update(world: Any, project: Path, results: dict[str, dict[str, Any]]) -> None:
    """Case 2 for both layouts: the base moves, the recipes stay."""
    base_before = {d for d, _ in layers_of(world.registry.host, *_split(world.mirror))}
    update_base(world.mirror, world.repo.path / f"{world.repo.packages[BASE_ADDED]}.rpm")
    base_after = {d for d, _ in layers_of(world.registry.host, *_split(world.mirror))}
    for name, result in results.items():
        repository = f"bench/updates-{name}"
        reference = f"{world.registry.host}/{repository}:latest"
        (project / "recipes" / "updates.yaml").write_text(
            recipe(world.mirror, [*LAYERS[0], ADDED], name == "rechunk")
        )
        old = {d for d, _ in layers_of(world.registry.host, repository, result["second"])}
        third, _ = build_push(project, reference)
        new = layers_of(world.registry.host, repository, third["digest"])
        custom = [(d, s) for d, s in new if d not in base_after]
        fetched = [(d, s) for d, s in custom if d not in old]
        names = layer_names(reference)  # aligned with the manifest's layers, bottom up
        result["base_update"] = {
            "base_layers_new": len(base_after - base_before),
            "custom_layers_fetched": len(fetched),
            "fetched_names": [
                names[i] for i, (d, _) in enumerate(new) if d in {f for f, _ in fetched}
            ],
            "custom_layers": len(custom),
            "custom_bytes_fetched": sum(s for _, s in fetched),
            "top_layer_bytes": new[-1][1],
        }


def layer_names(reference: str) -> list[str]:
    """Each layer's history entry (its chunk's name when rechunked), bottom up."""
    inspect = json.loads(podman("image", "inspect", reference))[0]
    made = [h.get("created_by", "") for h in inspect["History"] if not h.get("empty_layer")]
    names = [n.removeprefix("nestcustom rechunk: ") for n in made]
    layers = inspect["RootFS"]["Layers"]
    return names[-len(layers) :] if len(names) >= len(layers) else ["?"] * len(layers)


def _split(reference: str) -> tuple[str, str]:
    """`host/repo:tag` -> (repo, tag), for layers_of."""
    _, _, rest = reference.partition("/")
    repository, _, tag = rest.rpartition(":")
    return repository, tag


def main() -> None:
    parser = argparse.ArgumentParser(description="bytes a host downloads for an update")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    as_installed()
    with tempfile.TemporaryDirectory(prefix="nc-bench-updates-") as tmp, universe() as world:
        project = Path(tmp)
        (project / "recipes").mkdir()
        results = {
            "plain": run_layout(world, project, rechunk=False),
            "rechunk": run_layout(world, project, rechunk=True),
        }
        payload = (world.repo.path / f"{world.repo.packages[ADDED]}.rpm").stat().st_size
        base_update(world, project, results)
    plain, chunked = results["plain"], results["rechunk"]
    summary: dict[str, Any] = {
        "case": f"{ADDED} added to the first of {len(LAYERS)} layers",
        "changed_package_bytes": payload,
        "layouts": results,
        "ratio_plain": plain["downloaded_bytes"] / payload,
        "ratio_rechunk": chunked["downloaded_bytes"] / (payload + chunked["top_layer_bytes"]),
        "cold_ratio": chunked["cold_seconds"] / plain["cold_seconds"],
        "warm_ratio": chunked["warm_seconds"] / plain["warm_seconds"],
        "load": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['case']}, load {summary['load']:.1f}")
    for name, result in results.items():
        print(
            f"  {name}: a host on the first image downloads {result['layers_fetched']} of "
            f"{result['layers']} layers, {result['downloaded_bytes']} bytes compressed "
            f"(top layer {result['top_layer_bytes']} bytes); build cold {result['cold_seconds']:.1f} s, "
            f"warm {result['warm_seconds']:.1f} s"
        )
        bu = result["base_update"]
        print(
            f"    base updated ({bu['base_layers_new']} new base layer(s)), recipe unchanged: "
            f"{bu['custom_layers_fetched']} of {bu['custom_layers']} custom layers fetched, "
            f"{bu['custom_bytes_fetched']} bytes (top layer {bu['top_layer_bytes']}): "
            + ", ".join(n if len(n) <= 40 else n[:37] + "..." for n in bu["fetched_names"])
        )
    print(f"  the added package's RPM: {payload} bytes")
    print(
        f"  ratio plain {summary['ratio_plain']:.1f} (against the package), rechunked "
        f"{summary['ratio_rechunk']:.2f} (against package + rpm-database layer; goal <= 1.5)"
    )
    print(
        f"  build time rechunked / plain: cold {summary['cold_ratio']:.2f}, warm "
        f"{summary['warm_ratio']:.2f} (goal <= 1.2)"
    )


if __name__ == "__main__":
    main()
