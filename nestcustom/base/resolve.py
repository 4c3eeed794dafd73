"""Resolve the package set against the ISO's repositories before anything is written.

dnf (Debian's python3-dnf, run by the system python in dnf_resolve.py) does
the work: comps groups, EL8 modular filtering, weak dependencies. The answer
is a frozen Plan: the image's packages and the bootstrap's (the ISO's own
rpm and what it needs), each with its place on the ISO and its checksum.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.base.repos import Media
from nestcustom.base.variants import Variant
from nestcustom.errors import BadInputError, NestcustomError

HELPER = Path(__file__).resolve().parent / "dnf_resolve.py"
_BASEARCH = {"i686": "i386", "armv7hl": "armhfp"}


@dataclass(frozen=True)
class Package:
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    repo: str
    location: str  # relative to its repository
    path: str  # relative to the ISO's root
    checksum_type: str
    checksum: str
    size: int
    install_size: int

    @property
    def nevra(self) -> str:
        """NAME-VERSION-RELEASE.ARCH, as rpm -iv prints it."""
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"

    @property
    def nevra_epoch_short(self) -> str:
        """NAME-EPOCH:VERSION-RELEASE.ARCH when the epoch is not 0, as rpm -iv prints it."""
        if not self.epoch:
            return self.nevra
        return f"{self.name}-{self.epoch}:{self.version}-{self.release}.{self.arch}"

    @property
    def nevra_epoch(self) -> str:
        """NAME-EPOCH:VERSION-RELEASE.ARCH, as the install report lists it."""
        return f"{self.name}-{self.epoch}:{self.version}-{self.release}.{self.arch}"


@dataclass(frozen=True)
class Plan:
    packages: tuple[Package, ...]  # the image, sorted by name
    bootstrap: tuple[Package, ...]  # the ISO's rpm and what it needs

    @property
    def install_size(self) -> int:
        return sum(p.install_size for p in self.packages)


def system_python() -> str:
    """The python3 that Debian's python3-dnf is installed for."""
    for candidate in ("/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and Path(candidate).exists():
            done = proc.run([candidate, "-c", "import dnf"], check=False, timeout=60)
            if done.returncode == 0:
                return candidate
    raise NestcustomError(
        "dnf's Python module is not installed (needed to resolve packages)",
        "apt-get install python3-dnf, or run scripts/setup-host",
    )


def platform_of(media: Media, metadata: dict[str, Path]) -> str | None:
    """EL8 modules require a platform stream (platform:el8); read it from the modules' deps."""
    import gzip
    import lzma
    import re

    platforms: set[str] = set()
    for repo in media.repos:
        for path in repo.metadata:
            if "modules" not in Path(path).name:
                continue
            local = metadata[repo.id] / "repodata" / Path(path).name
            raw = local.read_bytes()
            if path.endswith(".gz"):
                raw = gzip.decompress(raw)
            elif path.endswith(".xz"):
                raw = lzma.decompress(raw)
            for match in re.finditer(rb"platform:\s*\[\s*([A-Za-z0-9_.-]+)\s*\]", raw):
                platforms.add(match[1].decode())
    return f"platform:{sorted(platforms)[0]}" if len(platforms) == 1 else None


def resolve(
    media: Media,
    metadata: dict[str, Path],
    specs: tuple[str, ...],
    variant: Variant,
    work: Path,
    cachedir: Path | None = None,
) -> Plan:
    """The packages to install, or a BadInputError that says what does not resolve.

    cachedir: where dnf keeps its cache of the metadata (libsolv's files), kept
    between builds of the same ISO (isocache); by default a directory in `work`.
    """
    arch = media.release.arch or _host_arch()
    request = {
        "installroot": str(work / "resolve-root"),
        "cachedir": str(cachedir or work / "resolve-cache"),
        "logdir": str(work / "resolve-log"),
        "arch": arch,
        "basearch": _BASEARCH.get(arch, arch),
        "releasever": media.release.version.split(".")[0],
        "platform": platform_of(media, metadata),
        "repos": [{"id": rid, "baseurl": path.as_uri()} for rid, path in metadata.items()],
        "specs": list(specs),
        "weak_deps": variant.weak_deps,
        "optional": list(variant.optional),
        "bootstrap": ["rpm"],
    }
    for directory in ("resolve-root", "resolve-log"):
        (work / directory).mkdir(parents=True, exist_ok=True)
    done = proc.run(
        [system_python(), "-I", str(HELPER)], input_text=json.dumps(request), timeout=1800
    )
    try:
        answer = json.loads(done.stdout)
    except ValueError as exc:
        raise NestcustomError(f"the resolver gave no answer: {done.stderr.strip()[-500:]}") from exc
    if not answer["ok"]:
        kind = answer["kind"]
        message = str(answer["message"]).strip()
        if kind == "nomatch":
            missing = ", ".join(answer["missing"]) or message
            raise BadInputError(
                f"not on the ISO: {missing}",
                "check the names (dnf syntax: name, name-version, @group, @module:stream); "
                "nothing was written",
            )
        if kind == "bootstrap":
            raise BadInputError(
                f"the ISO has no installable rpm package ({message}): its rpm is needed to write "
                "the image's rpm database"
            )
        if kind == "repo":
            raise BadInputError(f"the ISO's repository metadata cannot be read: {message}")
        raise BadInputError(
            f"the package set does not resolve:\n{message}",
            "remove or replace the packages named above; nothing was written",
        )
    by_repo = {repo.id: repo.path for repo in media.repos}

    def package(item: dict[str, object]) -> Package:
        prefix = by_repo[str(item["repo"])]
        location = str(item["location"])
        path = f"{prefix}/{location}" if prefix else location
        return Package(
            name=str(item["name"]),
            epoch=int(str(item["epoch"])),
            version=str(item["version"]),
            release=str(item["release"]),
            arch=str(item["arch"]),
            repo=str(item["repo"]),
            location=location,
            path=path,
            checksum_type=str(item["checksum_type"]),
            checksum=str(item["checksum"]),
            size=int(str(item["size"])),
            install_size=int(str(item["install_size"])),
        )

    packages = tuple(sorted((package(i) for i in answer["packages"]), key=lambda p: p.nevra))
    bootstrap = tuple(sorted((package(i) for i in answer["bootstrap"]), key=lambda p: p.nevra))
    if not packages:
        raise BadInputError("the package set is empty", "name packages or groups with --packages")
    return Plan(packages, bootstrap)


def _host_arch() -> str:
    import platform

    return platform.machine()
