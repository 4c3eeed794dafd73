"""Pytest fixtures for the fixture NestOS base images (tests/universe/base/build.py).

Plain fixtures, to be imported into a conftest.py or a test module together
with the RPM repository fixtures they build on::

    from ..fixtures_rpm import rpm_repo, rpm_repo_url  # noqa: F401
    from .fixtures_base import nestos_sp2, nestos_sp2_image  # noqa: F401

Images are built once per run (and reused across runs: build_base_image keeps
an image whose input-hash label still matches). Set NC_UNIVERSE_BASE_WORKDIR
to choose the scratch directory of the build (default: a pytest temp dir).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..rpmrepo import RpmRepo, repo_file
from .build import build_base_image
from .builder import build_builder_image

WORKDIR_ENV = "NC_UNIVERSE_BASE_WORKDIR"
REQUIRED_TOOLS = ("podman", "mmdebstrap", "rpmbuild", "rpm")
REPO_ID = "nctest"
#: Where NestosImage.run mounts the repository's RPMs and the extra RPMs.
RPMS_MOUNT = "/rpms"
EXTRA_MOUNT = "/rpms-extra"


@dataclass(frozen=True)
class Result:
    """Outcome of a command in a container or of a podman build."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def stdout_lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _podman(args: Sequence[str], timeout: float = 600) -> Result:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class NestosImage:
    """A fixture NestOS base image, with the test repository configured for runs and builds."""

    ref: str
    repo_text: str | None = None
    rpms_dir: Path | None = None
    extra_dir: Path | None = None
    scratch: Path = field(default_factory=lambda: Path("/tmp"))
    _built: list[str] = field(default_factory=list)

    def run(
        self,
        script: str,
        *,
        env: Mapping[str, str] | None = None,
        privileged: bool = False,
        with_repo: bool = True,
        volumes: Mapping[Path, str] | None = None,
    ) -> Result:
        """``podman run --rm`` of the image executing ``sh -c script``.

        The test repository is configured as /etc/yum.repos.d/nctest.repo, the
        repo's RPMs are mounted at /rpms and the extra RPMs at /rpms-extra.
        """
        args = ["run", "--rm", "--network=host", "--pull=never"]
        if privileged:
            args.append("--privileged")
        if with_repo and self.repo_text is not None:
            repo = self.scratch / f"{REPO_ID}.repo"
            if not repo.exists():
                repo.write_text(self.repo_text)
            args += ["-v", f"{repo}:/etc/yum.repos.d/{REPO_ID}.repo:ro"]
        if self.rpms_dir is not None:
            args += ["-v", f"{self.rpms_dir}:{RPMS_MOUNT}:ro"]
        if self.extra_dir is not None:
            args += ["-v", f"{self.extra_dir}:{EXTRA_MOUNT}:ro"]
        for host_path, container_path in (volumes or {}).items():
            args += ["-v", f"{host_path}:{container_path}:ro"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        return _podman([*args, self.ref, "sh", "-c", script])

    def build(
        self, steps: str, files: Mapping[str, str | bytes] | None = None, keep: bool = False
    ) -> tuple[Result, str]:
        """``podman build`` of ``FROM <this image>`` + ``steps``; returns (result, tag).

        ``nctest.repo`` (the test repository) is in the build context next to
        ``files``. The image is removed at session end unless ``keep``.
        """
        ctx = self.scratch / f"build-{uuid.uuid4().hex[:12]}"
        ctx.mkdir(parents=True)
        if self.repo_text is not None:
            (ctx / f"{REPO_ID}.repo").write_text(self.repo_text)
        for name, content in (files or {}).items():
            target = ctx / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        (ctx / "Containerfile").write_text(f"FROM {self.ref}\n{steps}\n")
        tag = f"localhost/nestcustom-test/contract:{ctx.name}"
        result = _podman(
            ["build", "--pull=never", "--network=host", "--layers=false", "-t", tag, str(ctx)]
        )
        shutil.rmtree(ctx, ignore_errors=True)
        if result.returncode == 0 and not keep:
            self._built.append(tag)
        return result, tag

    def cleanup(self) -> None:
        for tag in self._built:
            _podman(["rmi", "--force", tag])
        self._built.clear()


def _require_tools() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup-host (as root)")


@pytest.fixture(scope="session")
def base_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scratch directory for building the base images."""
    configured = os.environ.get(WORKDIR_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("nestos-base")


@pytest.fixture(scope="session")
def nestos_sp2_image(base_workdir: Path) -> str:
    """Local reference of the fixture NestOS 22.03 LTS SP2 image (rpm-ostree 2022.16)."""
    _require_tools()
    return build_base_image("sp2", base_workdir)


@pytest.fixture(scope="session")
def nestos_sp1_image(base_workdir: Path) -> str:
    """Local reference of the fixture NestOS 22.03 LTS SP1 image (rpm-ostree 2022.8)."""
    _require_tools()
    return build_base_image("sp1", base_workdir)


def _image(
    ref: str, rpm_repo: RpmRepo, url: str, factory: pytest.TempPathFactory
) -> Iterator[NestosImage]:
    image = NestosImage(
        ref=ref,
        repo_text=repo_file(url, REPO_ID),
        rpms_dir=rpm_repo.path,
        extra_dir=rpm_repo.extra_path,
        scratch=factory.mktemp("nestos-run"),
    )
    try:
        yield image
    finally:
        image.cleanup()


@pytest.fixture(scope="session")
def nestos_sp2(
    nestos_sp2_image: str,
    rpm_repo: RpmRepo,
    rpm_repo_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NestosImage]:
    """The SP2 fixture image with the served test repository configured."""
    yield from _image(nestos_sp2_image, rpm_repo, rpm_repo_url, tmp_path_factory)


@pytest.fixture(scope="session")
def nestos_sp1(
    nestos_sp1_image: str,
    rpm_repo: RpmRepo,
    rpm_repo_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NestosImage]:
    """The SP1 fixture image with the served test repository configured."""
    yield from _image(nestos_sp1_image, rpm_repo, rpm_repo_url, tmp_path_factory)


SRPM_SPEC = """\
Name: nc-srcpkg
Version: 1.0
Release: 1
Summary: a source package the emulator must refuse
License: MIT
BuildArch: noarch
%description
Source RPM fixture.
%files
"""


@pytest.fixture(scope="session")
def source_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real .src.rpm (built with rpmbuild -bs) in its own directory."""
    top = tmp_path_factory.mktemp("srpm")
    spec = top / "nc-srcpkg.spec"
    spec.write_text(SRPM_SPEC)
    subprocess.run(
        ["rpmbuild", "-bs", "--nodeps", "--quiet", "--define", f"_topdir {top}", str(spec)],
        check=True,
        capture_output=True,
    )
    srpms = sorted((top / "SRPMS").glob("*.src.rpm"))
    assert srpms, "rpmbuild -bs produced no source RPM"
    return srpms[0]


@pytest.fixture(scope="session")
def kmod_builder_image(base_workdir: Path) -> str:
    """Local reference of the kernel-module builder for the SP2 base's kernel."""
    _require_tools()
    return build_builder_image("sp2", base_workdir)
