"""Benchmark: nestcustom build against plain `podman build`, caching, and push uploads.

Runs on the local universe (tests/universe/session.py). All timings are ratios
against `podman build` of the same rendered Containerfile, run in the same
process, in alternating order, median of three:

1. cold (--no-cache on both) and warm (fully cached) build: nestcustom / podman;
   both with nestcustom starting its own podman API service (no socket running,
   the usual case on a build host) and with a service already running;
2. changing only the last of four layers: rebuild / cold build, and how many
   layer steps re-ran (must be 1); reordering a package list: re-runs 0;
3. pushing after that change: blobs the registry received (only the changed
   layer, plus the image config).

    python -m bench.build [--json]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.universe.session import Universe, universe

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["nc-libgreet", "nc-hello", "nc-scriptlet", "strace"]


def recipe_text(base: str, last: str) -> str:
    layers = "".join(f"  - {{name: l{i}, install: [{p}]}}\n" for i, p in enumerate(PACKAGES[:3]))
    return f'name: bench\nbase: {{image: "{base}"}}\nlayers:\n{layers}  - {{name: l3, install: [{last}]}}\n'


def nestcustom(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"nestcustom {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done


def podman(*args: str) -> None:
    subprocess.run(["podman", *args], capture_output=True, text=True, check=True)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_pair(
    ours: Callable[[], object], theirs: Callable[[], object], runs: int = 3
) -> tuple[float, float]:
    a: list[float] = []
    b: list[float] = []
    for index in range(runs):  # alternate who goes first
        if index % 2:
            b.append(timed(theirs))
            a.append(timed(ours))
        else:
            a.append(timed(ours))
            b.append(timed(theirs))
    return statistics.median(a), statistics.median(b)


@contextmanager
def running_service() -> Iterator[dict[str, str]]:
    """An API service started once, as on a host where podman.socket is enabled."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"unix://{tmp}/podman.sock"
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not Path(f"{tmp}/podman.sock").exists():
                time.sleep(0.05)
            yield {**os.environ, "CONTAINER_HOST": url}
        finally:
            service.terminate()
            service.wait()


def rerun_layers(summary: str) -> list[str]:
    steps = json.loads(summary)[0]["steps"]
    return [s["name"] for s in steps if s["name"].startswith("layer ") and not s["cached"]]


def commit(project: Path, message: str) -> None:
    """Recipes live in a GitOps repo: each change is committed before it is built."""
    git = ["git", "-C", str(project), "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
    subprocess.run(
        [*git, "commit", "-q", "--allow-empty", "-m", message], check=True, capture_output=True
    )


def run(world: Universe, project: Path) -> dict[str, object]:
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    recipe = project / "recipes" / "bench.yaml"
    recipe.parent.mkdir()
    recipe.write_text(recipe_text(world.mirror, PACKAGES[3]))
    (project / ".gitignore").write_text("containerfiles/\n")
    commit(project, "bench recipe")
    nestcustom(project, "render", "recipes/bench.yaml", "-o", "containerfiles/bench/Containerfile")
    containerfile = str(project / "containerfiles" / "bench" / "Containerfile")
    tag = "localhost/nestcustom-bench/bench:latest"

    def ours(*extra: str, env: dict[str, str] | None = None) -> Callable[[], object]:
        return lambda: nestcustom(
            project, "build", "recipes/bench.yaml", "--tag", tag, *extra, env=env
        )

    def theirs(*extra: str) -> Callable[[], object]:
        # host network: the universe serves its RPM repo on 127.0.0.1 (API builds reach it too).
        return lambda: podman(
            "build",
            "-q",
            "--network=host",
            *extra,
            "-f",
            containerfile,
            "-t",
            tag + "-podman",
            str(project),
        )

    result: dict[str, object] = {}
    ours()()  # pull the mirror base into storage once, outside the timings
    cold = median_pair(ours("--no-cache"), theirs("--no-cache"))
    warm = median_pair(ours(), theirs())
    with running_service() as env:
        cold_svc = median_pair(ours("--no-cache", env=env), theirs("--no-cache"))
        warm_svc = median_pair(ours(env=env), theirs())
    startup = timed(
        lambda: subprocess.run(
            [sys.executable, "-m", "nestcustom", "--version"], capture_output=True, check=True
        )
    )
    result["build"] = {
        "cold": {"nestcustom_s": cold[0], "podman_s": cold[1], "ratio": cold[0] / cold[1]},
        "warm": {"nestcustom_s": warm[0], "podman_s": warm[1], "ratio": warm[0] / warm[1]},
        "cold_service_running": {
            "nestcustom_s": cold_svc[0],
            "podman_s": cold_svc[1],
            "ratio": cold_svc[0] / cold_svc[1],
        },
        "warm_service_running": {
            "nestcustom_s": warm_svc[0],
            "podman_s": warm_svc[1],
            "ratio": warm_svc[0] / warm_svc[1],
        },
        "python_startup_s": startup,
    }

    # 2. cache behaviour, and 3. what a push after a one-layer change uploads.
    pushed = f"{world.registry.host}/bench/bench:v1"
    cold_time = timed(ours("--no-cache", "--json"))
    nestcustom(project, "build", "recipes/bench.yaml", "--tag", pushed, "--push", "--no-tls-verify")
    before_uploads = world.registry.blob_uploads()
    recipe.write_text(recipe_text(world.mirror, f"{PACKAGES[3]}, jq"))
    commit(project, "add jq to the last layer")
    started = time.perf_counter()
    changed = nestcustom(project, "build", "recipes/bench.yaml", "--tag", pushed, "--json")
    change_time = time.perf_counter() - started
    nestcustom(project, "build", "recipes/bench.yaml", "--tag", pushed, "--push", "--no-tls-verify")
    uploads = world.registry.blob_uploads() - before_uploads
    recipe.write_text(recipe_text(world.mirror, f"jq, {PACKAGES[3]}, jq"))
    commit(project, "reorder the last layer")
    reordered = nestcustom(project, "build", "recipes/bench.yaml", "--tag", tag, "--json")
    result["cache"] = {
        "last_layer_change_over_cold": change_time / cold_time,
        "rerun_after_last_layer_change": rerun_layers(changed.stdout),
        "rerun_after_reorder": rerun_layers(reordered.stdout),
        "blobs_uploaded_after_change": uploads,
    }
    for name in (tag, tag + "-podman", pushed):
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True, check=False)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom build benchmark")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with universe() as world, tempfile.TemporaryDirectory() as tmp:
        result = run(world, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    build = result["build"]
    assert isinstance(build, dict)
    print("nestcustom build / podman build of the same Containerfile (median of 3; goal <= 1.05)")
    for key in ("cold", "warm", "cold_service_running", "warm_service_running"):
        row = build[key]
        print(
            f"  {key:22} {row['nestcustom_s']:6.2f} s / {row['podman_s']:6.2f} s = {row['ratio']:.2f}"
        )
    print(f"  python start-up of the nestcustom command: {build['python_startup_s']:.2f} s")
    cache = result["cache"]
    assert isinstance(cache, dict)
    print(
        f"last layer changed: rebuild / cold = {cache['last_layer_change_over_cold']:.2f} (goal <= 0.3), "
        f"re-ran {cache['rerun_after_last_layer_change']}"
    )
    print(f"package list reordered: re-ran {cache['rerun_after_reorder']}")
    print(f"push after the change: {cache['blobs_uploaded_after_change']} blob(s) uploaded")


if __name__ == "__main__":
    main()
