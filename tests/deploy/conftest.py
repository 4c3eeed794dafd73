"""Fixtures of the deploy tests that need hosts: the host image, images in the
registry, a fleet of test hosts, and `nestcustom` run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.universe.fleet.harness import HostFleet
from tests.universe.fleet.image import build_host_image
from tests.universe.registry import Registry
from tests.universe.session import CACHE

FleetFactory = Callable[..., HostFleet]
ORIGIN = "openEuler:openEuler/x86_64/nestos/stable"


def podman(*args: str) -> str:
    for _ in range(3):  # podman 4.3 can trip over other users' builds in the shared storage
        done = subprocess.run(
            ["podman", *args], capture_output=True, text=True, check=False, timeout=600
        )
        if done.returncode == 0 or "identifier is not a container" not in done.stderr:
            break
    assert done.returncode == 0, done.stderr
    return done.stdout


def digest_of(reference: str) -> str:
    out = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            f"docker://{reference}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def nestcustom(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
    )


def report(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert result.stdout.strip(), result.stderr
    return {h["host"]: h for h in json.loads(result.stdout)["hosts"]}


def outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {name: str(row["outcome"]) for name, row in report(result).items()}


@pytest.fixture(scope="session")
def host_image() -> str:
    return build_host_image(CACHE)


@pytest.fixture(scope="session")
def images(
    registry: Registry, nestos_sp2_image: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Images in the registry: two bootable versions and one without ostree.bootable
    (rpm-ostree checks only that the label is present, so this one has no labels at all)."""
    context = tmp_path_factory.mktemp("deploy-images")
    (context / "hello").write_text("not an operating system\n")
    refs = {}
    for name, text in (
        ("v1", f"FROM {nestos_sp2_image}\nRUN echo v1 > /usr/share/nc-version\n"),
        ("v2", f"FROM {nestos_sp2_image}\nRUN echo v2 > /usr/share/nc-version\n"),
        ("plain", "FROM scratch\nCOPY hello /hello\n"),
    ):
        (context / "Containerfile").write_text(text)
        reference = f"{registry.host}/fleet/nestos:{name}"
        podman("build", "-q", "-t", reference, str(context))
        podman("push", "-q", "--tls-verify=false", reference)
        refs[name] = reference
    return refs


@pytest.fixture
def fleet(host_image: str, registry: Registry, tmp_path: Path) -> Iterator[FleetFactory]:
    with ExitStack() as stack:

        def start(count: int, **kwargs: Any) -> HostFleet:
            return stack.enter_context(
                HostFleet(count, host_image, tmp_path / "fleet", registry.host, **kwargs)
            )

        yield start
