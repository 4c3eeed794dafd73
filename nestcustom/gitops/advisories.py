"""Security advisories an image is exposed to: the repositories' updateinfo.xml against the
image's own RPM database, judged as `dnf updateinfo list --security` judges them.

An advisory applies when an installed package of the same name and
architecture (or a noarch one) is older (rpm's EVR comparison) than a package
the advisory lists: the update that fixes it exists and is not installed.
Only `type="security"` advisories count. Repositories are the ones given, else
the image's enabled repositories (its /etc/yum.repos.d, read from local
storage without running anything).
"""

from __future__ import annotations

import bz2
import configparser
import gzip
import lzma
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.gitops.imagedb import open_image
from nestcustom.image.rpmdb import Package, read_packages
from nestcustom.image.rpmversion import compare_evr

SEVERITIES = ("low", "moderate", "important", "critical")  # ascending
_REPO = "{http://linux.duke.edu/metadata/repo}"


@dataclass(frozen=True)
class Fix:
    name: str
    arch: str
    evr: str


@dataclass(frozen=True)
class Advisory:
    id: str
    severity: str  # lower case; "" when the advisory states none
    title: str
    fixes: tuple[Fix, ...]
    cves: tuple[str, ...]
    repo: str


@dataclass(frozen=True)
class Exposure:
    advisory: Advisory
    package: Package  # installed
    fixed: Fix  # the version that fixes it

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.advisory.id,
            "severity": self.advisory.severity or "unknown",
            "title": self.advisory.title,
            "cves": list(self.advisory.cves),
            "package": self.package.name,
            "arch": self.package.arch,
            "installed": self.package.evr,
            "fixed": self.fixed.evr,
            "repo": self.advisory.repo,
        }


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - http(s)/file
            data: bytes = response.read()
            return data
    except (urllib.error.URLError, OSError) as exc:
        raise NestcustomError(
            f"cannot read {url}: {getattr(exc, 'reason', exc)}",
            "check the repository URL (and that it is reachable from here)",
        ) from exc


def _unpack(data: bytes, name: str) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".zst"):
        raise NestcustomError(f"{name}: zstd-compressed updateinfo is not read here")
    return data


def repo_advisories(baseurl: str) -> list[Advisory]:
    """The advisories of one repository (none when it has no updateinfo)."""
    base = baseurl.rstrip("/") + "/"
    if urllib.parse.urlsplit(base).scheme not in ("http", "https", "file"):
        raise BadInputError(f"{baseurl!r}: a repository is an http(s):// or file:// URL")
    repomd = _xml(_fetch(base + "repodata/repomd.xml"), base + "repodata/repomd.xml")
    for data in repomd.findall(f"{_REPO}data"):
        if data.get("type") == "updateinfo":
            location = data.find(f"{_REPO}location")
            href = location.get("href", "") if location is not None else ""
            return parse_updateinfo(_unpack(_fetch(base + href), href), baseurl, base + href)
    return []


def _xml(data: bytes, where: str) -> Any:
    try:
        return SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise NestcustomError(f"{where}:{line}:{column}: not well-formed XML: {exc}") from exc


def parse_updateinfo(xml: bytes, repo: str, where: str = "updateinfo.xml") -> list[Advisory]:
    found = []
    for update in _xml(xml, where).iter("update"):
        if update.get("type") != "security":
            continue
        fixes = tuple(
            Fix(
                p.get("name", ""),
                p.get("arch", ""),
                (f"{p.get('epoch')}:" if p.get("epoch") not in (None, "", "0") else "")
                + f"{p.get('version', '')}-{p.get('release', '')}",
            )
            for p in update.iter("package")
        )
        cves = tuple(r.get("id", "") for r in update.iter("reference") if r.get("type") == "cve")
        found.append(
            Advisory(
                (update.findtext("id") or "").strip(),
                (update.findtext("severity") or "").strip().lower(),
                (update.findtext("title") or "").strip(),
                fixes,
                cves,
                repo,
            )
        )
    return found


def exposures(packages: Iterable[Package], advisories: Iterable[Advisory]) -> list[Exposure]:
    by_name: dict[str, list[Package]] = {}
    for package in packages:
        by_name.setdefault(package.name, []).append(package)
    found: dict[tuple[str, str, str], Exposure] = {}
    for advisory in advisories:
        for fix in advisory.fixes:
            for package in by_name.get(fix.name, []):
                same_arch = fix.arch in (package.arch, "noarch") or package.arch == "noarch"
                if same_arch and compare_evr(package.evr, fix.evr) < 0:
                    key = (advisory.id, package.name, package.arch)
                    found.setdefault(key, Exposure(advisory, package, fix))
    return sorted(
        found.values(),
        key=lambda e: (-severity_rank(e.advisory.severity), e.advisory.id, e.package.name),
    )


def image_repos(spec: str, arch: str | None = None) -> list[str]:
    """Base URLs of the enabled repositories in the local image's /etc/yum.repos.d."""
    from nestcustom.gitops.imagedb import LOCAL, _inspect

    item = _inspect(spec.removeprefix(LOCAL)) or {}
    driver = item.get("GraphDriver")
    data = driver.get("Data") if isinstance(driver, dict) else None
    if not isinstance(data, dict) or not data.get("UpperDir"):
        raise BadInputError(
            f"{spec}: the image's repositories can only be read from local storage",
            "name the repositories with --repo URL",
        )
    layers = [Path(data["UpperDir"])] + [
        Path(p) for p in str(data.get("LowerDir") or "").split(":") if p
    ]
    files: dict[str, Path | None] = {}
    for layer in layers:
        directory = layer / "etc/yum.repos.d"
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            name = entry.name.removeprefix(".wh.")
            if name not in files:
                files[name] = None if entry.name.startswith(".wh.") else entry
    arch = arch or "x86_64"
    urls = []
    for path in (p for n, p in sorted(files.items()) if p is not None and n.endswith(".repo")):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(path.read_text(errors="replace"))
        except configparser.Error:
            continue
        for section in parser.sections():
            if parser.get(section, "enabled", fallback="1").strip() not in ("1", "true", "yes"):
                continue
            baseurl = parser.get(section, "baseurl", fallback="").split()
            if baseurl:
                urls.append(baseurl[0].replace("$basearch", arch))
    return urls


def advisories_for(
    spec: str, repos: tuple[str, ...] = (), *, tls_verify: bool = True
) -> tuple[list[Exposure], list[str]]:
    """(exposures, the repositories read) of the image `spec` names."""
    db = open_image(spec, tls_verify=tls_verify)
    if db.db is None:
        raise BadInputError(
            f"{spec}: the image has no RPM database", "advisories are judged by installed RPMs"
        )
    packages = read_packages(db.db)
    urls = list(repos) or image_repos(spec)
    advisories = [a for url in dict.fromkeys(urls) for a in repo_advisories(url)]
    return exposures(packages, advisories), urls


def advisory_gate(
    fail_on: str, repos: tuple[str, ...], tls_verify: bool = True
) -> Callable[[str, str, bool], None]:
    """A build gate: refuse an image exposed to an advisory of `fail_on` or higher. It is
    called with the recipe, the image (containers-storage:ID, or docker://REF@DIGEST for
    one only the registry holds) and whether it was just built; an image of unchanged
    inputs already at its tag is judged too (advisories come out after builds)."""
    threshold = severity_rank(fail_on)

    def gate(recipe: str, spec: str, fresh: bool) -> None:
        if spec.startswith("docker://") and not repos:
            # Its repositories are read from local storage (image_repos): say so, not pass.
            sys.stderr.write(
                f"warning: {recipe}: not judged for advisories: {spec.removeprefix('docker://')} "
                "is only in the registry (give --advisory-repo URL to judge it there)\n"
            )
            return
        found, _ = advisories_for(spec, repos, tls_verify=tls_verify)
        bad = [e for e in found if severity_rank(e.advisory.severity) >= threshold]
        if bad:
            first = bad[0]
            raise NestcustomError(
                f"exposed to {len(bad)} security advisor{'y' if len(bad) == 1 else 'ies'} of "
                f"severity {fail_on} or higher: {first.advisory.id} ({first.advisory.severity}) "
                f"{first.package.name} {first.package.evr} < {first.fixed.evr}"
                + (f", and {len(bad) - 1} more" if len(bad) > 1 else "")
                + (
                    "; not tagged, not pushed"
                    if fresh
                    else "; it is the image already at the tag (its inputs did not change)"
                ),
                "rebuild to get the fixed packages (build --no-cache if the layer is cached), "
                "or see `nestcustom advisories IMAGE`",
            )

    return gate
