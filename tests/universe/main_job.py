"""The README's first command: the main job, end to end, on the local universe.

Starts the universe (RPM repo, fixture NestOS base, registry, base mirror),
validates recipes/, checks containerfiles/ is fresh, builds the buildable
recipes on the mirror of their base, pushes them to the local registry, runs
each recipe's tests against the image, and prints the pushed REF@digest.
Everything goes through the nestcustom command line, as a user would drive it.

    python -m tests.universe.main_job [RECIPE ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .session import universe

ROOT = Path(__file__).resolve().parents[2]
# Recipes whose packages the universe's repo provides (the others name example.com repos).
BUILDABLE = ["recipes/nestos-strace.yaml"]


def nestcustom(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    print(f"\n$ nestcustom {' '.join(args)}", flush=True)
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=ROOT,
        text=True,
        check=False,
        stdout=subprocess.PIPE if capture else None,
    )


def main(argv: list[str]) -> int:
    recipes = argv or BUILDABLE
    print("Starting the local universe (first run: about a minute) ...", flush=True)
    with universe() as world:
        print(
            f"  RPM repo   {world.repo_url}\n  registry   {world.registry.host}\n  base       {world.mirror}"
        )
        all_recipes = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").glob("*.yaml"))
        if nestcustom("validate", *all_recipes).returncode != 0:
            return 2
        if nestcustom("render", "--all", "--check").returncode != 0:
            return 1
        built = nestcustom(
            "build",
            *recipes,
            "--base",
            world.mirror,
            "--jobs",
            "2",
            "--push",
            "--no-tls-verify",
            "--tag",
            f"{world.registry.host}/custom/{{name}}:latest",
            "--json",
            capture=True,
        )
        summary = json.loads(built.stdout or "[]")
        if built.returncode != 0:
            return 1
        failed = 0
        for recipe, item in zip(recipes, summary, strict=True):
            failed += nestcustom("test", recipe, "--image", item["reference"]).returncode != 0
        print("\nPushed images (what `rpm-ostree rebase ostree-unverified-registry:REF` takes):")
        for item in summary:
            print(f"  {item['pinned']}")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
