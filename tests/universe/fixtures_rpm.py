"""Pytest fixtures for the test universe's RPM repository.

Plain fixtures, to be imported into a conftest.py (or a test module)::

    from .fixtures_rpm import rpm_repo, rpm_repo_url  # noqa: F401

Set NC_UNIVERSE_RPM_CACHE to a directory to reuse the built repository
across test sessions (build_repo only rebuilds when the inputs changed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .rpmrepo import RpmRepo, build_repo, serve_repo

CACHE_ENV = "NC_UNIVERSE_RPM_CACHE"
REQUIRED_TOOLS = ("rpmbuild", "rpm", "createrepo_c", "dpkg-deb", "apt-get")


@pytest.fixture(scope="session")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory) -> RpmRepo:
    """The built repository (see tests/universe/rpmrepo.py)."""
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: install the apt packages listed in "
            "tests/universe/rpms/APT-PACKAGES"
        )
    cache = os.environ.get(CACHE_ENV)
    workdir = Path(cache) if cache else tmp_path_factory.mktemp("rpmrepo")
    return build_repo(workdir)


@pytest.fixture(scope="session")
def rpm_repo_url(rpm_repo: RpmRepo) -> Iterator[str]:
    """Base URL (ending in '/') of rpm_repo served on 127.0.0.1; extra RPMs under extra/."""
    with serve_repo(rpm_repo) as url:
        yield url
