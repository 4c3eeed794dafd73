"""Fixtures of the base-image tests: the universe's DVD ISOs, and base images built from them.

The ISOs are built once (and cached under /var/tmp/nestcustom-universe/iso, keyed by
content); the @core images are built once per session through the command line,
as a user would, and removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.universe.iso.build import CACHE, Iso, build_iso, build_norepo_iso

ROOT = Path(__file__).resolve().parents[2]
#: `base from-iso`'s cache for the tests: the universe's, not the machine's /var/cache.
BASE_CACHE = CACHE.parent / "base-cache"


def nestcustom(
    *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"NESTCUSTOM_CACHE_DIR": str(BASE_CACHE), **os.environ, **(env or {})},
    )


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=300, check=False
    )


@dataclass(frozen=True)
class Built:
    tag: str
    report: dict[str, Any]
    stderr: str


def from_iso(iso: Path, *args: str, tag: str | None = None) -> Built:
    """Run `nestcustom base from-iso ... --json`; the build must succeed."""
    tag = tag or f"localhost/nctest-base/{uuid.uuid4().hex[:10]}:latest"
    done = nestcustom("base", "from-iso", str(iso), "--tag", tag, "--json", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return Built(tag, json.loads(done.stdout), done.stderr)


@pytest.fixture(scope="session")
def iso_treeinfo() -> Iso:
    return build_iso("treeinfo")


@pytest.fixture(scope="session")
def iso_flat_sysimage() -> Iso:
    """EL7-style tree whose rpm keeps its database under /usr/lib/sysimage/rpm."""
    return build_iso("flat", "/usr/lib/sysimage/rpm")


@pytest.fixture(scope="session")
def iso_unsigned() -> Iso:
    return build_iso("flat", damage="unsigned")


@pytest.fixture(scope="session")
def iso_corrupt() -> Iso:
    return build_iso("flat", damage="corrupt")


@pytest.fixture(scope="session")
def iso_hostile() -> Iso:
    """Its rpm package says every package verifies, and is signed by an outsider."""
    return build_iso("flat", damage="hostile-rpm")


@pytest.fixture(scope="session")
def iso_el8() -> Iso:
    """NewStart V6 as it is: rpm 4.16 with BerkeleyDB at /var/lib/rpm, RSA/SHA1 signatures."""
    return build_iso("treeinfo", profile="el8")


@pytest.fixture(scope="session")
def iso_norepo() -> Path:
    return build_norepo_iso()


@pytest.fixture(scope="session")
def built_images() -> Iterator[list[str]]:
    """Tags made by the session's builds; removed at its end."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        podman("rmi", "-f", tag)


@pytest.fixture(scope="session")
def standard_core(iso_treeinfo: Iso, built_images: list[str]) -> Built:
    built = from_iso(iso_treeinfo.path, "--variant", "standard")
    built_images.append(built.tag)
    return built


@pytest.fixture(scope="session")
def optimized_core(iso_treeinfo: Iso, built_images: list[str]) -> Built:
    built = from_iso(iso_treeinfo.path, "--variant", "optimized")
    built_images.append(built.tag)
    return built


@pytest.fixture(scope="session")
def el8_standard(iso_el8: Iso, built_images: list[str]) -> Built:
    built = from_iso(iso_el8.path, "--variant", "standard")
    built_images.append(built.tag)
    return built


@pytest.fixture(scope="session")
def el8_optimized(iso_el8: Iso, built_images: list[str]) -> Built:
    built = from_iso(iso_el8.path, "--variant", "optimized")
    built_images.append(built.tag)
    return built
