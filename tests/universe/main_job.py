"""The README's first command: the main job, end to end, on the local universe.

Starts the universe (RPM repo, fixture NestOS base, registry, base mirror),
validates recipes/, checks containerfiles/ is fresh, builds the buildable
recipes on the mirror of their base, pushes them to the local registry, runs
each recipe's tests against the image, and prints the pushed REF@digest.
It also builds the nestcustom tool image (tool-image/Containerfile, from the wheel
`python -m build` makes) and runs nestcustom and a podman build in it. Then the NewStart part: builds both variants of the NewStart base from each of the universe's DVD ISOs
(rpm 4.18 with sqlite, and EL8-like: rpm 4.16 with BerkeleyDB; `nestcustom base from-iso`), pushes them, publishes a mirror of it whose
repositories point at the DVD's served over HTTP, and builds, pushes and
tests the NewStart example recipe on it.
Everything goes through the nestcustom command line, as a user would drive it.

    python -m tests.universe.main_job [RECIPE ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .download_site import mirror_argument, serve_download_site
from .iso.build import build_iso
from .iso.mirror import publish_mirror, serve_iso
from .session import CACHE, Universe, publish_builder, universe
from .tool_image import build_tool_image, check_tool_image

ROOT = Path(__file__).resolve().parents[2]
# Recipes whose packages the universe's repo provides (the others name example.com repos).
BUILDABLE = [
    "recipes/nestos-strace.yaml",
    "recipes/nestos-ops.yaml",
    "recipes/nestos-kmod.yaml",
    "recipes/nestos-site-config.yaml",
    "recipes/nestos-agent-files.yaml",
    "recipes/nestos-downloads.yaml",
    "recipes/nestos-kmod-rpm.yaml",
    "recipes/nestos-user-tools.yaml",
]
NEWSTART = ["recipes/newstart-tools.yaml"]


def nestcustom(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    print(f"\n$ nestcustom {' '.join(args)}", flush=True)
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=ROOT,
        text=True,
        check=False,
        stdout=subprocess.PIPE if capture else None,
    )


def build_push_test(
    world: Universe, recipes: list[str], base: str, *more: str
) -> tuple[int, list[str]]:
    """Build the recipes on `base`, push them, test them; (exit code, pinned references)."""
    built = nestcustom(
        "build",
        *recipes,
        "--base",
        base,
        "--mirror",  # builder stages' images, from the local registry
        f"hub.oepkgs.net={world.registry.host}",
        *more,
        "--jobs",
        "2",
        "--push",
        "--no-tls-verify",
        "--tag",
        f"{world.registry.host}/custom/{{name}}:latest",
        "--json",
        capture=True,
    )
    summary = json.loads(built.stdout)["images"] if built.stdout else []
    if built.returncode != 0:
        return 1, []
    failed = 0
    for recipe, item in zip(recipes, summary, strict=True):
        failed += nestcustom("test", recipe, "--image", item["reference"]).returncode != 0
    return (1 if failed else 0), [item["pinned"] for item in summary]


def newstart(world: Universe) -> tuple[int, list[str]]:
    """Both universe DVDs (rpm 4.18 with sqlite; EL8-like: rpm 4.16 with BerkeleyDB), both
    variants of each, and the NewStart example on each standard base."""
    code = 0
    pinned: list[str] = []
    for profile, name in (("bookworm", "newstart"), ("el8", "newstart-el8")):
        print(
            f"\nBuilding the universe's {profile} NewStart DVD (first run: minutes) ...", flush=True
        )
        iso = build_iso("treeinfo", profile=profile)
        base = f"{world.registry.host}/newstart/{name}:v6.06-x86_64"
        for variant, tag in (("optimized", f"{base}-optimized"), ("standard", base)):
            made = nestcustom(
                "base", "from-iso", str(iso.path), "--variant", variant,
                "--tag", tag, "--push", "--no-tls-verify",
            )  # fmt: skip
            if made.returncode != 0:
                return made.returncode, pinned
        mirror = f"{world.registry.host}/newstart/{name}-mirror:v6.06-x86_64"
        with serve_iso(iso) as url:
            publish_mirror(base, url, mirror)
            print(f"  NewStart base {base}\n  its mirror    {mirror} (repositories: {url})")
            result, images = build_push_test(world, NEWSTART, mirror)
        code, pinned = code or result, pinned + images
    return code, pinned


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
        print("\nBuilding the nestcustom tool image (tool-image/Containerfile) ...", flush=True)
        tool = build_tool_image()
        for line in check_tool_image(tool):
            print(f"  {tool}: {line}")
        builder = publish_builder(world.registry, CACHE / "base")
        print(f"  builder    {builder}")
        with serve_download_site() as site:  # the downloads' vendor site, mirrored here
            mirror = mirror_argument(site)
            code, pinned = build_push_test(
                world, recipes, world.mirror, "--download-mirror", mirror
            )
        if not argv:
            newstart_code, newstart_pinned = newstart(world)
            code = code or newstart_code
            pinned += newstart_pinned
        print("\nPushed images (what `rpm-ostree rebase ostree-unverified-registry:REF` takes):")
        for item in pinned:
            print(f"  {item}")
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
