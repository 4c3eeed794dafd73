"""Small RPM repositories made for the GitOps tests and benchmark: one spec, many packages.

One rpmbuild call writes every package of a repository (sub-packages of one
spec), so a repository of hundreds of packages takes seconds. Each package
owns one file under /usr/share/nc-gitops/ and may carry changelog entries.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.universe.rpmrepo import RpmRepo, serve_repo


@dataclass(frozen=True)
class Pkg:
    name: str
    version: str = "1.0"
    release: str = "1"
    # (date as rpm writes it, "Name <mail> - EVR", text): newest first
    changelog: tuple[tuple[str, str, str], ...] = ()
    size: int = 64  # bytes of its one file (random above 4 KB, so it does not compress away)


def _spec(packages: Sequence[Pkg]) -> str:
    """A spec whose main package is never written; every Pkg is a sub-package."""
    lines = [
        "Name: nc-gitops-set",
        "Version: 1",
        "Release: 1",
        "Summary: GitOps test packages",
        "License: MIT",
        "BuildArch: noarch",
        "%description",
        "GitOps test packages.",
    ]
    for p in packages:
        lines += [
            f"%package -n {p.name}",
            f"Version: {p.version}",
            f"Release: {p.release}",
            f"Summary: test package {p.name}",
            f"%description -n {p.name}",
            f"Test package {p.name}.",
        ]
    lines += ["%install", "mkdir -p %{buildroot}/usr/share/nc-gitops"]
    for p in packages:
        source = "/dev/urandom" if p.size > 4096 else "/dev/zero"
        lines.append(f"head -c {p.size} {source} > %{{buildroot}}/usr/share/nc-gitops/{p.name}")
    for p in packages:
        lines += [f"%files -n {p.name}", f"/usr/share/nc-gitops/{p.name}"]
    # Changelogs belong to the whole spec; each package's own comes from a separate build.
    return "\n".join(lines) + "\n"


def build_rpms(packages: Sequence[Pkg], into: Path, work: Path) -> list[Path]:
    """Build `packages` into `into` (one rpmbuild per distinct changelog)."""
    into.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[tuple[str, str, str], ...], list[Pkg]] = {}
    for package in packages:
        groups.setdefault(package.changelog, []).append(package)
    built: list[Path] = []
    for number, (changelog, group) in enumerate(groups.items()):
        topdir = work / f"rpmbuild-{number}"
        spec = topdir / "set.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        text = _spec(group)
        if changelog:
            text += "%changelog\n" + "\n".join(
                f"* {day} {author}\n{body}\n" for day, author, body in changelog
            )
        spec.write_text(text)
        subprocess.run(
            [
                "rpmbuild",
                "-bb",
                "--quiet",
                "--define",
                f"_topdir {topdir}",
                "--define",
                "_binary_payload w1.gzdio",
                "--define",
                "__os_install_post %{nil}",
                "--define",
                "debug_package %{nil}",
                "--define",
                "_build_id_links none",
                str(spec),
            ],
            check=True,
            capture_output=True,
        )
        for rpm in (topdir / "RPMS").rglob("*.rpm"):
            shutil.copy2(rpm, into / rpm.name)
            built.append(into / rpm.name)
    return built


def make_repo(packages: Sequence[Pkg], path: Path, work: Path) -> RpmRepo:
    build_rpms(packages, path, work)
    subprocess.run(["createrepo_c", "--quiet", str(path)], check=True, capture_output=True)
    extra = path / "extra-none"
    extra.mkdir(exist_ok=True)
    return RpmRepo(path, extra, {p.name: f"{p.name}-{p.version}-{p.release}" for p in packages})


@contextmanager
def served(packages: Sequence[Pkg], path: Path, work: Path) -> Iterator[str]:
    """The URL of a repository of `packages`, served on 127.0.0.1 while in the block."""
    with serve_repo(make_repo(packages, path, work)) as url:
        yield url
