"""The test universe's fixtures, a pytest plugin loaded by tests/conftest.py.

Started once per run and stopped at its end: the RPM repo served over HTTP,
the fixture NestOS bases, and a registry.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .base import fixtures_base
from .fixtures_rpm import rpm_repo, rpm_repo_url
from .registry import Registry, run_registry

base_workdir = fixtures_base.base_workdir
nestos_sp1_image = fixtures_base.nestos_sp1_image
nestos_sp2_image = fixtures_base.nestos_sp2_image
nestos_sp1 = fixtures_base.nestos_sp1
nestos_sp2 = fixtures_base.nestos_sp2
kmod_builder_image = fixtures_base.kmod_builder_image
source_rpm = fixtures_base.source_rpm

__all__ = ["rpm_repo", "rpm_repo_url"]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running
