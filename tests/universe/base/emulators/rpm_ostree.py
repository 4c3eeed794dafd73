#!/usr/libexec/nestcustom-emu/python3
"""Test-universe emulator of ``rpm-ostree`` inside a NestOS container build.

Follows shared/contracts/nestos-rpm-ostree.md section 1. Installed into the
fixture base image as /usr/bin/rpm-ostree; the interpreter lives off PATH
because NestOS has no python3. The emulated version comes from
/usr/lib/nestcustom-emu/versions (``rpm-ostree=2022.16``).

Dependency rule (documented because the fixture rootfs is Debian, whose own
files are not in the RPM database): every ``Requires`` of a package to install
is satisfied, in this order, by ``rpmlib(...)`` (always), an installed RPM's
provides, a package already chosen, a package of an enabled repository (by
name, provides or file list), a path that exists in the image, or else, for a
shared-library soname (``libc.so.6(GLIBC_2.34)(64bit)``) or a path, by the
base OS itself. Anything else is a depsolve error. After resolving, the
packages are installed with ``rpm -i --nodeps`` in one transaction, so their
scriptlets really run.
"""

from __future__ import annotations

import bz2
import configparser
import gzip
import lzma
import os
import platform
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

VERSIONS_FILE = Path(os.environ.get("NESTCUSTOM_EMU_VERSIONS", "/usr/lib/nestcustom-emu/versions"))
REPOS_DIR = Path("/etc/yum.repos.d")
CACHE_DIR = Path("/var/cache/rpm-ostree")
OSTREE_REPO_CONFIG = Path("/sysroot/ostree/repo/config")

NS = {
    "c": "http://linux.duke.edu/metadata/common",
    "rpm": "http://linux.duke.edu/metadata/rpm",
    "repo": "http://linux.duke.edu/metadata/repo",
}

CONTAINER_COMMANDS = {"install", "uninstall", "search", "cleanup", "override"}
KNOWN_COMMANDS = CONTAINER_COMMANDS | {
    "status",
    "upgrade",
    "update",
    "rebase",
    "deploy",
    "rollback",
    "kargs",
    "initramfs",
    "initramfs-etc",
    "apply-live",
    "reset",
    "refresh-md",
    "reload",
    "cancel",
    "usroverlay",
    "db",
    "compose",
    "ex",
    "finalize-deployment",
}


class EmuError(Exception):
    """An rpm-ostree error: printed as ``error: <message>``, exit 1."""


# ----------------------------------------------------------------- versions


def emulated_versions() -> dict[str, str]:
    out: dict[str, str] = {"rpm-ostree": "2022.16", "ostree-ext": "0.9.1"}
    if VERSIONS_FILE.exists():
        for line in VERSIONS_FILE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
    return out


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def at_least(version: str) -> bool:
    return version_tuple(emulated_versions()["rpm-ostree"]) >= version_tuple(version)


# ---------------------------------------------------------------- detection


def is_ostree_container() -> bool:
    try:
        config = OSTREE_REPO_CONFIG.read_text()
    except OSError:
        return False
    if not re.search(r"^\s*mode\s*=\s*bare-split-xattrs\s*$", config, re.MULTILINE):
        return False
    return "container" in os.environ or Path("/run/.containerenv").exists()


def not_booted_error() -> EmuError:
    value = os.environ.get("container")  # noqa: SIM112
    if value is not None:
        first = (
            "This system was not booted via libostree; "
            f"found container={value} environment variable."
        )
    else:
        first = "This system was not booted via libostree."
    return EmuError(
        first + "\nCurrently, most rpm-ostree commands only work on ostree-based host systems."
    )


# ------------------------------------------------------------- rpm versions


def rpmvercmp(a: str, b: str) -> int:
    """rpm's version segment comparison."""
    if a == b:
        return 0
    seg = re.compile(r"(~|\^|\d+|[A-Za-z]+)")
    ia = seg.findall(a)
    ib = seg.findall(b)
    i = 0
    while True:
        xa = ia[i] if i < len(ia) else None
        xb = ib[i] if i < len(ib) else None
        if xa == "~" or xb == "~":
            if xa != "~":
                return 1
            if xb != "~":
                return -1
            i += 1
            continue
        if xa == "^" or xb == "^":
            if xa is None:
                return -1
            if xb is None:
                return 1
            if xa != "^":
                return 1
            if xb != "^":
                return -1
            i += 1
            continue
        if xa is None or xb is None:
            if xa is None and xb is None:
                return 0
            return -1 if xa is None else 1
        if xa.isdigit() and xb.isdigit():
            na, nb = int(xa), int(xb)
            if na != nb:
                return 1 if na > nb else -1
        elif xa.isdigit():
            return 1
        elif xb.isdigit():
            return -1
        elif xa != xb:
            return 1 if xa > xb else -1
        i += 1


@dataclass(frozen=True)
class EVR:
    epoch: int
    version: str
    release: str

    @staticmethod
    def parse(text: str) -> EVR:
        epoch = 0
        if ":" in text:
            e, text = text.split(":", 1)
            epoch = int(e or 0)
        version, _, release = text.partition("-")
        return EVR(epoch, version, release)

    def compare(self, other: EVR) -> int:
        if self.epoch != other.epoch:
            return 1 if self.epoch > other.epoch else -1
        c = rpmvercmp(self.version, other.version)
        if c or not self.release or not other.release:
            return c
        return rpmvercmp(self.release, other.release)


FLAG_OPS = {"EQ": "=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}


@dataclass(frozen=True)
class Dep:
    name: str
    op: str = ""
    evr: str = ""

    def satisfied_by(self, have: EVR | None) -> bool:
        if not self.op or have is None:
            return True
        c = have.compare(EVR.parse(self.evr))
        return {
            "=": c == 0,
            "<": c < 0,
            "<=": c <= 0,
            ">": c > 0,
            ">=": c >= 0,
        }.get(self.op, True)

    @staticmethod
    def parse(line: str) -> Dep:
        parts = line.split()
        if len(parts) == 3:
            return Dep(parts[0], parts[1], parts[2])
        return Dep(line.strip())


@dataclass
class Package:
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    repo: str
    location: str  # URL or local path
    summary: str = ""
    provides: list[tuple[Dep, EVR | None]] = field(default_factory=list)
    requires: list[Dep] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    is_source: bool = False

    @property
    def evr(self) -> EVR:
        return EVR(self.epoch, self.version, self.release)

    @property
    def nevra(self) -> str:
        ev = f"{self.epoch}:{self.version}" if self.epoch else self.version
        return f"{self.name}-{ev}-{self.release}.{self.arch}"

    def provides_dep(self, dep: Dep) -> bool:
        if dep.name.startswith("/"):
            return dep.name in self.files
        if dep.name == self.name and dep.satisfied_by(self.evr):
            return True
        return any(p.name == dep.name and dep.satisfied_by(v) for p, v in self.provides)


# -------------------------------------------------------------------- rpm


def run_rpm(args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["rpm", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise EmuError(f"rpm {' '.join(args[:1])}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def installed_nevra(name: str) -> str | None:
    proc = run_rpm(
        ["-q", "--qf", "%{NAME}-%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}.%{ARCH}\\n", name],
        check=False,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.splitlines()[0]


def installed_provides() -> set[str]:
    proc = run_rpm(["-qa", "--qf", "[%{PROVIDENAME}\\n]%{NAME}\\n"], check=False)
    return {line.strip() for line in proc.stdout.splitlines() if line.strip()}


QF_LOCAL = "%{NAME}\\t%|EPOCH?{%{EPOCH}}:{0}|\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{SUMMARY}\\n"


def read_local_rpm(path: Path, shown: str) -> Package:
    proc = run_rpm(["-qp", "--nosignature", "--qf", QF_LOCAL, str(path)], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise EmuError(f"Failed to read RPM header of {shown}: {proc.stderr.strip()}")
    name, epoch, version, release, arch, sourcerpm, summary = proc.stdout.splitlines()[0].split(
        "\t"
    )
    pkg = Package(
        name=name,
        epoch=int(epoch or 0),
        version=version,
        release=release,
        arch=arch,
        repo="commandline",
        location=str(path),
        summary=summary,
        is_source=sourcerpm == "(none)",
    )
    reqs = run_rpm(["-qp", "--nosignature", "--requires", str(path)], check=False).stdout
    pkg.requires = [Dep.parse(r) for r in reqs.splitlines() if r.strip()]
    provs = run_rpm(["-qp", "--nosignature", "--provides", str(path)], check=False).stdout
    for line in provs.splitlines():
        if line.strip():
            dep = Dep.parse(line)
            pkg.provides.append((Dep(dep.name), EVR.parse(dep.evr) if dep.evr else None))
    files = run_rpm(["-qpl", "--nosignature", str(path)], check=False).stdout
    pkg.files = {f for f in files.splitlines() if f.startswith("/")}
    return pkg


# ------------------------------------------------------------------ repos


@dataclass
class Repo:
    repo_id: str
    baseurl: str
    packages: list[Package] = field(default_factory=list)


def basearch() -> str:
    return platform.machine()


def releasever() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_ID="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def enabled_repos(enable: Iterable[str] = (), disable: Iterable[str] = ()) -> list[Repo]:
    enable_set, disable_set = set(enable), set(disable)
    repos: list[Repo] = []
    if not REPOS_DIR.is_dir():
        return repos
    for repo_file in sorted(REPOS_DIR.glob("*.repo")):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(repo_file)
        except configparser.Error as exc:
            raise EmuError(f"Parsing {repo_file}: {exc}") from exc
        for section in parser.sections():
            sect = parser[section]
            enabled = sect.get("enabled", "1").strip() not in {"0", "false", "no"}
            if section in enable_set or "*" in enable_set:
                enabled = True
            if section in disable_set or "*" in disable_set:
                enabled = False
            if not enabled:
                continue
            urls = sect.get("baseurl", "").split()
            if not urls:
                raise EmuError(f"Cannot find a valid baseurl for repo: {section}")
            url = urls[0].replace("$basearch", basearch()).replace("$releasever", releasever())
            if not url.endswith("/"):
                url += "/"
            repos.append(Repo(section, url))
    return repos


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            data: bytes = resp.read()
            return data
    except urllib.error.HTTPError as exc:
        raise EmuError(f"Server returned HTTP {exc.code} for {url}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise EmuError(f"Cannot download {url}: {exc}") from exc


def decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".zst"):
        proc = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            raise EmuError(f"Cannot decompress {name}")
        return proc.stdout
    return data


def load_repo(repo: Repo) -> None:
    try:
        repomd = fetch(repo.baseurl + "repodata/repomd.xml")
    except EmuError as exc:
        raise EmuError(
            f"Updating rpm-md repo '{repo.repo_id}': cannot update repo '{repo.repo_id}': "
            f"Cannot download repomd.xml: {exc}"
        ) from exc
    cache = CACHE_DIR / "repomd" / repo.repo_id
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "repomd.xml").write_bytes(repomd)
    root = ET.fromstring(repomd)
    href = None
    for data in root.findall("repo:data", NS):
        if data.get("type") == "primary":
            loc = data.find("repo:location", NS)
            if loc is not None:
                href = loc.get("href")
    if not href:
        raise EmuError(f"Updating rpm-md repo '{repo.repo_id}': no primary metadata")
    raw = fetch(repo.baseurl + href)
    (cache / Path(href).name).write_bytes(raw)
    primary = ET.fromstring(decompress(href, raw))
    arches = {"noarch", basearch()}
    for el in primary.findall("c:package", NS):
        arch = el.findtext("c:arch", default="", namespaces=NS)
        if arch not in arches:
            continue
        ver = el.find("c:version", NS)
        loc = el.find("c:location", NS)
        if ver is None or loc is None:
            continue
        base = loc.get("{http://www.w3.org/XML/1998/namespace}base") or repo.baseurl
        pkg = Package(
            name=el.findtext("c:name", default="", namespaces=NS),
            epoch=int(ver.get("epoch") or 0),
            version=ver.get("ver", ""),
            release=ver.get("rel", ""),
            arch=arch,
            repo=repo.repo_id,
            location=urllib.parse.urljoin(base, loc.get("href", "")),
            summary=el.findtext("c:summary", default="", namespaces=NS),
        )
        fmt = el.find("c:format", NS)
        if fmt is not None:
            for entry in fmt.findall("rpm:provides/rpm:entry", NS):
                evr = None
                if entry.get("ver"):
                    evr = EVR(
                        int(entry.get("epoch") or 0), entry.get("ver", ""), entry.get("rel", "")
                    )
                pkg.provides.append((Dep(entry.get("name", "")), evr))
            for entry in fmt.findall("rpm:requires/rpm:entry", NS):
                op = FLAG_OPS.get(entry.get("flags", ""), "")
                evr_text = ""
                if op:
                    evr_text = entry.get("ver", "")
                    if entry.get("epoch") and entry.get("epoch") != "0":
                        evr_text = f"{entry.get('epoch')}:{evr_text}"
                    if entry.get("rel"):
                        evr_text += f"-{entry.get('rel')}"
                pkg.requires.append(Dep(entry.get("name", ""), op, evr_text))
            pkg.files = {f.text or "" for f in fmt.findall("c:file", NS)}
        for f in el.findall("c:file", NS):
            pkg.files.add(f.text or "")
        repo.packages.append(pkg)


def best(candidates: Iterable[Package]) -> Package | None:
    chosen: Package | None = None
    for pkg in candidates:
        if chosen is None or pkg.evr.compare(chosen.evr) > 0:
            chosen = pkg
    return chosen


# ---------------------------------------------------------------- depsolve


def is_soname(name: str) -> bool:
    return ".so" in name and not name.startswith("/")


def resolve(requested: list[Package], repos: list[Repo], installed: set[str]) -> list[Package]:
    """Close ``requested`` over Requires; see the module docstring for the rule."""
    pool = [p for r in repos for p in r.packages]
    chosen: dict[str, Package] = {p.name: p for p in requested}
    queue = list(requested)
    problems: list[str] = []
    while queue:
        pkg = queue.pop(0)
        for dep in pkg.requires:
            name = dep.name
            if name.startswith("rpmlib(") or name.startswith("config("):
                continue
            if name in installed:
                continue
            if any(c.provides_dep(dep) for c in chosen.values()):
                continue
            provider = best(p for p in pool if p.provides_dep(dep))
            if provider is not None:
                chosen[provider.name] = provider
                queue.append(provider)
                continue
            if name.startswith("/") and os.path.lexists(name):
                continue
            if is_soname(name) or name.startswith("/"):
                continue  # provided by the (Debian) base OS, which has no RPM db entries
            shown = f"{dep.name} {dep.op} {dep.evr}".strip()
            problems.append(f"nothing provides {shown} needed by {pkg.nevra}")
    if problems:
        lines = "\n".join(
            f" Problem {i}: conflicting requests\n  - {p}" for i, p in enumerate(problems, 1)
        )
        raise EmuError(
            f"Could not depsolve transaction; {len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''} detected:\n{lines}"
        )
    return sorted(chosen.values(), key=lambda p: p.name)


def download(pkg: Package) -> Path:
    if pkg.repo == "commandline":
        return Path(pkg.location)
    dest_dir = CACHE_DIR / "pkgs" / pkg.repo
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / Path(urllib.parse.urlparse(pkg.location).path).name
    dest.write_bytes(fetch(pkg.location))
    return dest


# --------------------------------------------------------------- sysusers


def read_db(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    try:
        for line in path.read_text().splitlines():
            parts = line.split(":")
            if parts and parts[0]:
                out[parts[0]] = parts
    except OSError:
        pass
    return out


def write_sysusers(before_pw: dict[str, list[str]], before_gr: dict[str, list[str]]) -> None:
    """Users and groups created by scriptlets become sysusers.d fragments."""
    after_pw = read_db(Path("/etc/passwd"))
    after_gr = read_db(Path("/etc/group"))
    out_dir = Path("/usr/lib/sysusers.d")
    for name, parts in after_gr.items():
        if name in before_gr or len(parts) < 3:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"30-rpmostree-pkg-group-{name}.conf").write_text(f"g {name} {parts[2]}\n")
    for name, parts in after_pw.items():
        if name in before_pw or len(parts) < 7:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        gecos = parts[4].replace('"', "") or "-"
        (out_dir / f"35-rpmostree-pkg-user-{name}.conf").write_text(
            f'u {name} {parts[2]}:{parts[3]} "{gecos}" {parts[5] or "-"} {parts[6] or "-"}\n'
        )


# ---------------------------------------------------------------- commands


def split_options(
    args: Sequence[str], flags: set[str], valued: set[str]
) -> tuple[dict[str, list[str]], list[str]]:
    opts: dict[str, list[str]] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional.extend(args[i + 1 :])
            break
        if arg.startswith("-") and arg != "-":
            key, eq, value = arg.partition("=")
            if key in valued:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise EmuError(f"Missing argument for {key}")
                    value = args[i]
                opts.setdefault(key, []).append(value)
            elif key in flags and not eq:
                opts.setdefault(key, []).append("")
            else:
                raise EmuError(f"Unknown option {arg}")
        else:
            positional.append(arg)
        i += 1
    return opts, positional


def is_local_arg(arg: str) -> bool:
    return arg.endswith(".rpm") or arg.startswith(("file://", "http://", "https://"))


def fetch_local(arg: str) -> Package:
    if arg.startswith(("http://", "https://")):
        dest_dir = CACHE_DIR / "pkgs" / "commandline"
        dest_dir.mkdir(parents=True, exist_ok=True)
        name = Path(urllib.parse.urlparse(arg).path).name or "download.rpm"
        dest = dest_dir / name
        try:
            dest.write_bytes(fetch(arg))
        except EmuError as exc:
            raise EmuError(f"While fetching {arg}: {exc}") from exc
        return read_local_rpm(dest, arg)
    path = (
        Path(urllib.parse.unquote(urllib.parse.urlparse(arg).path))
        if arg.startswith("file://")
        else Path(arg)
    )
    if not path.is_file():
        raise EmuError(f"Opening {arg}: No such file or directory")
    return read_local_rpm(path, arg)


def refuse_source(arg: str, pkg: Package | None = None) -> None:
    if arg.endswith(".src.rpm") or (pkg is not None and pkg.is_source):
        raise EmuError(f"Cannot install source RPM: {arg}")


INSTALL_FLAGS = {
    "-y",
    "--assumeyes",
    "--idempotent",
    "--allow-inactive",
    "-A",
    "--apply-live",
    "-r",
    "--reboot",
    "-n",
    "--dry-run",
    "-C",
    "--cache-only",
    "--force-replacefiles",
    "--download-only",
    "--unchanged-exit-77",
    "--lock-finalization",
}
INSTALL_VALUED = {"--uninstall", "--enablerepo", "--disablerepo", "--sysroot", "--os"}


def rpm_install(paths: Sequence[Path], upgrade: bool = False) -> None:
    before_pw, before_gr = read_db(Path("/etc/passwd")), read_db(Path("/etc/group"))
    mode = ["-U", "--oldpackage", "--replacefiles"] if upgrade else ["-i"]
    cmd = ["rpm", *mode, "--force-debian", "--nodeps", "--nosignature", *[str(p) for p in paths]]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        raise EmuError(f"Running rpm transaction: rpm exited with status {proc.returncode}")
    write_sysusers(before_pw, before_gr)


def cmd_install(args: Sequence[str]) -> int:
    opts, names = split_options(args, INSTALL_FLAGS, INSTALL_VALUED)
    if not names:
        raise EmuError("At least one PACKAGE must be specified")
    removals = opts.get("--uninstall", [])
    local_ok = at_least("2022.10")
    not_found: list[str] = []
    requested: list[Package] = []
    for arg in names:
        if is_local_arg(arg) and local_ok:
            refuse_source(arg)
            pkg = fetch_local(arg)
            refuse_source(arg, pkg)
            requested.append(pkg)
    repos = enabled_repos(opts.get("--enablerepo", []), opts.get("--disablerepo", []))
    if repos:
        print("Enabled rpm-md repositories: " + " ".join(r.repo_id for r in repos))
    for repo in repos:
        print(f"Updating metadata for '{repo.repo_id}'...", end="", flush=True)
        load_repo(repo)
        print("done")
        print(f"rpm-md repo '{repo.repo_id}'; solvables: {len(repo.packages)}")
    pool = [p for r in repos for p in r.packages]
    already: list[str] = []
    for arg in names:
        if is_local_arg(arg):
            if not local_ok:
                not_found.append(arg)
            continue
        if arg.endswith(".src") or arg.endswith(".src.rpm"):
            refuse_source(arg + (".rpm" if arg.endswith(".src") else ""))
        dep = Dep(arg)
        candidate = best(p for p in pool if p.provides_dep(dep))
        if candidate is None:
            if installed_nevra(arg) is not None:
                already.append(arg)
            else:
                not_found.append(arg)
            continue
        have = installed_nevra(candidate.name)
        if have is not None:
            already.append(arg)
            continue
        requested.append(candidate)
    if not_found:
        raise EmuError("Packages not found: " + ", ".join(not_found))
    if removals:
        cmd_override_remove(removals, dry_run=False)
    print("Resolving dependencies...", end="", flush=True)
    plan = resolve(requested, repos, installed_provides())
    print("done")
    if not plan:
        print("Empty transaction")
        return 0
    print(f"Installing {len(plan)} packages:")
    for pkg in plan:
        print(f"  {pkg.nevra} ({pkg.repo})")
    if "-n" in opts or "--dry-run" in opts:
        print("Exiting because of '--dry-run' option")
        return 0
    paths = [download(p) for p in plan]
    sys.stdout.flush()
    rpm_install(paths)
    return 0


def cmd_override_remove(args: Sequence[str], dry_run: bool = False) -> int:
    opts, names = split_options(
        args,
        {"-r", "--reboot", "--lock-finalization", "--cache-only", "-C"},
        {"--install", "--replace", "--sysroot", "--os"},
    )
    if not names:
        raise EmuError("At least one PACKAGE must be specified")
    nevras: list[str] = []
    for name in names:
        nevra = installed_nevra(name)
        if nevra is None:
            raise EmuError(f'Package "{name}" not found')
        nevras.append(nevra)
    test = run_rpm(["-e", "--test", *names], check=False)
    if test.returncode != 0:
        problems = [
            ln.strip()
            for ln in (test.stderr + test.stdout).splitlines()
            if ln.strip() and not ln.startswith("error: Failed dependencies")
        ]
        raise EmuError(
            f"Could not depsolve transaction; {len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''} detected:\n"
            + "\n".join(f" Problem: {p}" for p in problems)
        )
    print("Removed:")
    for nevra in nevras:
        print(f"  {nevra}")
    if dry_run:
        return 0
    sys.stdout.flush()
    proc = subprocess.run(["rpm", "-e", "--force-debian", *names], check=False)
    if proc.returncode != 0:
        raise EmuError(f"Running rpm transaction: rpm exited with status {proc.returncode}")
    installs = opts.get("--install", [])
    if installs and at_least("2022.17"):
        return cmd_install(installs)
    return 0


def cmd_override_replace(args: Sequence[str]) -> int:
    opts, items = split_options(
        args,
        {"-r", "--reboot", "--experimental", "--lock-finalization", "-C", "--cache-only"},
        {"--remove", "--from", "--sysroot", "--os"},
    )
    if not items:
        raise EmuError("At least one PACKAGE must be specified")
    if any(not is_local_arg(a) for a in items) or "--from" in opts:
        raise EmuError("Non-local replacement overrides not implemented yet")
    plan: list[tuple[Package, str]] = []
    for arg in items:
        refuse_source(arg)
        pkg = fetch_local(arg)
        refuse_source(arg, pkg)
        old = installed_nevra(pkg.name)
        if old is None:
            raise EmuError(f"Package {pkg.name} doesn't replace a package of the same name")
        plan.append((pkg, old))
    print("Replaced:")
    for pkg, old in plan:
        print(f"  {old} -> {pkg.nevra}")
    sys.stdout.flush()
    rpm_install([Path(p.location) for p, _ in plan], upgrade=True)
    return 0


def cmd_override(args: Sequence[str]) -> int:
    if not args:
        raise EmuError("No sub-command specified for override")
    sub, rest = args[0], args[1:]
    if sub == "remove":
        return cmd_override_remove(rest)
    if sub == "replace":
        return cmd_override_replace(rest)
    raise not_booted_error()


def cmd_cleanup(args: Sequence[str]) -> int:
    opts, rest = split_options(
        args,
        {"-m", "--repomd", "-b", "--base", "-p", "--pending", "-r", "--rollback"},
        {"--os", "--sysroot"},
    )
    if rest:
        raise EmuError(f"Unexpected argument {rest[0]}")
    if not opts:
        raise EmuError("At least one cleanup option must be specified")
    if set(opts) - {"-m", "--repomd"}:
        raise not_booted_error()
    if CACHE_DIR.is_dir():
        for child in CACHE_DIR.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    return 0


def cmd_search(args: Sequence[str]) -> int:
    opts, terms = split_options(args, {"-C", "--cache-only"}, {"--enablerepo", "--disablerepo"})
    if not terms:
        raise EmuError("At least one search term must be specified")
    repos = enabled_repos(opts.get("--enablerepo", []), opts.get("--disablerepo", []))
    for repo in repos:
        load_repo(repo)
    matches: dict[str, Package] = {}
    for repo in repos:
        for pkg in repo.packages:
            if all(t.lower() in pkg.name.lower() for t in terms):
                prev = matches.get(pkg.name)
                if prev is None or pkg.evr.compare(prev.evr) > 0:
                    matches[pkg.name] = pkg
    if not matches:
        print("No matches found.")
        return 0
    print("===== Name Matched =====")
    for name in sorted(matches):
        print(f"{name} : {matches[name].summary}")
    return 0


def print_version() -> None:
    ver = emulated_versions()["rpm-ostree"]
    print("rpm-ostree:")
    print(f" Version: '{ver}'")
    print(" Git: nestcustom-test-universe-emulator")
    print(" Features:")
    for feat in ("rust", "compose", "container", "fedora-integration"):
        print(f"  - {feat}")


def dispatch(argv: Sequence[str]) -> int:
    args = list(argv)
    while args and args[0] in {"-q", "--quiet"}:
        args.pop(0)
    if not args:
        raise EmuError("No command specified")
    if args[0] == "--version":
        print_version()
        return 0
    if args[0] in {"-h", "--help"}:
        print("Usage:\n  rpm-ostree [OPTION…] COMMAND\n")
        print("Builtin Commands:\n  " + "\n  ".join(sorted(KNOWN_COMMANDS)))
        return 0
    command, rest = args[0], args[1:]
    if command not in KNOWN_COMMANDS:
        raise EmuError(f"Unknown command '{command}'")
    if not is_ostree_container() or command not in CONTAINER_COMMANDS:
        raise not_booted_error()
    if command == "install":
        return cmd_install(rest)
    if command == "uninstall":
        return cmd_override_remove(rest)
    if command == "override":
        return cmd_override(rest)
    if command == "cleanup":
        return cmd_cleanup(rest)
    return cmd_search(rest)


def main() -> int:
    try:
        return dispatch(sys.argv[1:])
    except EmuError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
