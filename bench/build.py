"""Benchmark: nestcustom build against plain `podman build`, in one run on the local universe.

All rows are ratios against `podman build` of the same rendered Containerfiles,
run in the same process, alternating who goes first, median of three:

- no-change: `nestcustom build recipes/*.yaml` of 20 unchanged, already built
  recipes (one invocation) / the 20 warm `podman build` runs of their
  Containerfiles (goal <= 0.5);
- warm: an unchanged recipe whose tag was removed, so nestcustom must build
  (every step from cache) / warm `podman build` (the fixed cost per run);
- cold: `--no-cache` on both (goal <= 1.2);
- jobs: three recipes sharing two cold layers: `--jobs 3` / `--jobs 1`
  (goal <= 1; each run on a base new to the cache).

    python -m bench.build [--json]

On a machine where several people run the universe, give it a cache of its own
(NC_UNIVERSE_CACHE=DIR): the RPM repository in the shared cache is rebuilt in
place when another checkout's specs differ, and a build reading it then fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench import as_installed
from tests.universe.session import Universe, universe

PACKAGES = ["nc-libgreet", "nc-hello", "nc-scriptlet", "strace"]


def recipe_text(name: str, base: str) -> str:
    layers = "".join(f"  - {{name: l{i}, install: [{p}]}}\n" for i, p in enumerate(PACKAGES))
    return f'name: {name}\nbase: {{image: "{base}"}}\nlayers:\n{layers}'


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return done


def nestcustom(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "nestcustom", *args], cwd=project)


def podman_build(project: Path, name: str, *extra: str) -> None:
    # host network: the universe serves its RPM repo on 127.0.0.1 (API builds reach it too).
    containerfile = str(project / "containerfiles" / name / "Containerfile")
    run(
        [
            "podman",
            "build",
            "-q",
            "--network=host",
            *extra,
            "-f",
            containerfile,
            "-t",
            f"localhost/nestcustom-bench/{name}:podman",
            str(project),
        ]
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_pair(
    ours: Callable[[], object], theirs: Callable[[], object], runs: int = 3
) -> tuple[float, float]:
    a: list[float] = []
    b: list[float] = []
    for index in range(runs):
        if index % 2:
            b.append(timed(theirs))
            a.append(timed(ours))
        else:
            a.append(timed(ours))
            b.append(timed(theirs))
    return statistics.median(a), statistics.median(b)


def new_base(base: str, repo_url: str) -> str:
    """`base` with the universe's RPM repo configured, under an image ID new to the cache."""
    reference = f"localhost/nestcustom-bench/base-{uuid.uuid4().hex[:8]}:1"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench.repo").write_text(
            f"[bench]\nname=bench\nbaseurl={repo_url}\nenabled=1\ngpgcheck=0\n"
        )
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {base}\nCOPY bench.repo /etc/yum.repos.d/bench.repo\n"
            f"LABEL bench.unique={uuid.uuid4().hex}\n"
        )
        run(["podman", "build", "-q", "-t", reference, tmp])
    return reference


def bench(world: Universe, project: Path, count: int = 20) -> dict[str, dict[str, float]]:
    run(["git", "init", "-q", str(project)])
    (project / "recipes").mkdir()
    names = [f"r{i:02d}" for i in range(count)]
    # The recipes' own base, new to podman's cache, its repo pointing at this run's RPM
    # server: the first build of the 20 recipes is cold whatever ran before.
    mirror = new_base(world.base, world.repo_url)
    for name in names:
        (project / "recipes" / f"{name}.yaml").write_text(recipe_text(name, mirror))
    git = ["git", "-C", str(project), "-c", "user.email=b@example.com", "-c", "user.name=b"]
    run([*git, "add", "-A"])
    run([*git, "commit", "-qm", "recipes"])
    nestcustom(project, "render", "--all")
    tag = "localhost/nestcustom-bench/{name}:latest"
    recipes = [f"recipes/{n}.yaml" for n in names]
    nestcustom(project, "build", *recipes, "--tag", tag, "--jobs", "2")
    for name in names:
        podman_build(project, name)  # podman's own final images, so its warm runs are warm
    rows: dict[str, dict[str, float]] = {}

    def row(key: str, pair: tuple[float, float]) -> None:
        rows[key] = {"nestcustom_s": pair[0], "baseline_s": pair[1], "ratio": pair[0] / pair[1]}

    def all_podman() -> None:
        for name in names:
            podman_build(project, name)

    row(
        "no-change",
        median_pair(lambda: nestcustom(project, "build", *recipes, "--tag", tag), all_podman),
    )
    one = tag.format(name=names[0])

    def warm_ours() -> None:
        run(["podman", "untag", one])  # the image stays in the cache; nestcustom must build
        nestcustom(project, "build", recipes[0], "--tag", one)

    row("warm", median_pair(warm_ours, lambda: podman_build(project, names[0])))
    row(
        "cold",
        median_pair(
            lambda: nestcustom(project, "build", recipes[0], "--tag", one, "--no-cache"),
            lambda: podman_build(project, names[0], "--no-cache"),
        ),
    )

    def shared(jobs: str) -> Callable[[], object]:
        def go() -> None:
            base = new_base(world.base, world.repo_url)
            for index, own in enumerate(["jq", "nc-sysuser", "nc-optapp"]):
                layers = "".join(
                    f"  - {{name: s{i}, install: [{p}]}}\n" for i, p in enumerate(PACKAGES[:2])
                )
                (project / "recipes" / f"shared{index}.yaml").write_text(
                    f'name: shared{index}\nbase: {{image: "{base}"}}\nlayers:\n{layers}'
                    f"  - {{name: own, install: [{own}]}}\n"
                )
            try:
                nestcustom(
                    project,
                    "build",
                    *(f"recipes/shared{i}.yaml" for i in range(3)),
                    "--tag",
                    tag,
                    "--jobs",
                    jobs,
                )
            finally:
                run(
                    [
                        "podman",
                        "rmi",
                        "-f",
                        base,
                        *(tag.format(name=f"shared{i}") for i in range(3)),
                    ]
                )

        return go

    row("jobs", median_pair(shared("3"), shared("1")))
    for name in names:
        subprocess.run(
            [
                "podman",
                "rmi",
                "-f",
                tag.format(name=name),
                f"localhost/nestcustom-bench/{name}:podman",
            ],
            capture_output=True,
            check=False,
        )
    return rows


GOALS = {"no-change": 0.5, "warm": None, "cold": 1.2, "jobs": 1.0}
BASELINES = {
    "no-change": "20 warm podman builds",
    "warm": "warm podman build",
    "cold": "podman build --no-cache",
    "jobs": "nestcustom --jobs 1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description="nestcustom build benchmark")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--recipes", type=int, default=20, help="recipes in the no-change row")
    args = parser.parse_args()
    as_installed()
    with universe() as world, tempfile.TemporaryDirectory() as tmp:
        rows = bench(world, Path(tmp), args.recipes)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'case':10} {'nestcustom':>11} {'baseline':>10} {'ratio':>6}  goal   baseline is")
    for key, row in rows.items():
        goal = GOALS[key]
        print(
            f"{key:10} {row['nestcustom_s']:10.2f}s {row['baseline_s']:9.2f}s {row['ratio']:6.2f}  "
            f"{'<= ' + str(goal) if goal else '-':6} {BASELINES[key]}"
        )
    startup = timed(lambda: run([sys.executable, "-m", "nestcustom", "--version"]))
    print(f"nestcustom --version: {startup:.3f} s")


if __name__ == "__main__":
    main()
