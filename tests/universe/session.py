"""The whole local universe in one context manager, for the main job and the benchmarks.

It serves the RPM repo, builds the fixture NestOS base, starts a registry, and
publishes a "mirror" of the base there: the fixture base whose openEuler repo
points at the served RPM repo, as a real NestOS base's repos point at
openEuler's mirrors. Recipes written for hub.oepkgs.net then build here with
`nestcustom build --base MIRROR`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base.build import VARIANTS, build_base_image, machine_arch
from .base.builder import build_builder_image
from .registry import Registry, run_registry
from .rpmrepo import RpmRepo, build_repo, serve_repo

CACHE = Path(os.environ.get("NC_UNIVERSE_CACHE", "/var/tmp/nestcustom-universe"))


@dataclass(frozen=True)
class Universe:
    repo: RpmRepo
    repo_url: str
    base: str  # the fixture base in local storage
    registry: Registry
    mirror: str  # the base as published in the local registry, repos pointing at repo_url


def _podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def publish_mirror(base: str, repo_url: str, registry: Registry, variant: str = "sp2") -> str:
    """Push `base`, its openEuler repo enabled and pointing at `repo_url`, into `registry`."""
    version = VARIANTS[variant].version
    mirror = f"{registry.host}/nestos/nestos-test:{version}-{machine_arch()}"
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        (context / "openEuler.repo").write_text(
            "[everything]\nname=openEuler everything (local mirror)\n"
            f"baseurl={repo_url}\nenabled=1\ngpgcheck=0\n"
        )
        (context / "Containerfile").write_text(
            f"FROM {base}\nCOPY openEuler.repo /etc/yum.repos.d/openEuler.repo\n"
        )
        _podman("build", "-q", "-t", mirror, str(context))
    _podman("push", "-q", "--tls-verify=false", mirror)
    return mirror


def publish_builder(registry: Registry, workdir: Path, variant: str = "sp2") -> str:
    """Push the kmod builder where recipes/nestos-kmod.yaml finds it through --mirror."""
    builder = build_builder_image(variant, workdir)
    stream = VARIANTS[variant].stream
    published = f"{registry.host}/nestos/kmod-builder:{stream}-{machine_arch()}"
    _podman("tag", builder, published)
    _podman("push", "-q", "--tls-verify=false", published)
    return published


@contextlib.contextmanager
def universe(workdir: Path | None = None) -> Iterator[Universe]:
    """Start everything; stop the servers at exit (images and caches stay for next time)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        scratch = workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="nc-universe-"))
        )
        repo = build_repo(CACHE / "rpms")
        repo_url = stack.enter_context(serve_repo(repo))
        base = build_base_image("sp2", CACHE / "base")
        registry = stack.enter_context(run_registry(scratch / "registry"))
        mirror = publish_mirror(base, repo_url, registry)
        yield Universe(repo, repo_url, base, registry, mirror)
