#!/usr/libexec/nestcustom-emu/python3
"""Test-universe emulator of ``rpm-ostree`` inside a NestOS container build.

Follows docs/contracts/nestos-rpm-ostree.md section 1. Installed into the
fixture base image as /usr/bin/rpm-ostree; the interpreter lives off PATH
because NestOS has no python3. The emulated version comes from
/usr/lib/nestcustom-emu/versions (``rpm-ostree=2022.16``).

Dependency rule (documented because the fixture rootfs is Debian, whose own
files are not in the RPM database): every ``Requires`` of a package to install
is satisfied, in this order, by ``rpmlib(...)`` (always), an installed RPM's
provides, a package already chosen, a package of an enabled repository (by
name, provides or file list), a path that exists in the image, or else, for a
shared-library soname (``libc.so.6(GLIBC_2.34)(64bit)``) or a path, by the
base OS itself. Anything else is a depsolve error. Every installed package is
locked at its version: a ``Requires`` that only a newer version of a base package
satisfies is a depsolve error naming both, never an upgrade of the base. After
resolving, the packages are installed with ``rpm -i --nodeps`` in one
transaction, so their scriptlets really run; a failing scriptlet fails the
transaction. Scriptlets find wrappers first on their PATH (rpm's
``_install_script_path``): systemctl, which passes on only ``preset``; and from
2022.16 on useradd/groupadd, which write sysusers.d fragments as rpm-ostree's
``scriptlet-intercept`` does, then run the real command.

Times (contract section 1, "Times in a container build"): NestOS's librpm 4.17
stamps every installed package with the clock (``time(NULL)``) and ignores
``SOURCE_DATE_EPOCH``; rpm-ostree's container path does not normalize them. The
fixture's rpm is Debian's 4.18, which would honour ``SOURCE_DATE_EPOCH``, so the
variable is taken out of rpm's environment. After a transaction the rpmdb lock
files are removed, as rpm-ostree's ``postprocess_cleanup_rpmdb`` does.
"""

from __future__ import annotations

import base64
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
import tempfile
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
RPMDB_DIR = Path("/usr/share/rpm")  # RPMOSTREE_RPMDB_LOCATION
OSTREE_REPO_CONFIG = Path("/sysroot/ostree/repo/config")

NS = {
    "c": "http://linux.duke.edu/metadata/common",
    "rpm": "http://linux.duke.edu/metadata/rpm",
    "repo": "http://linux.duke.edu/metadata/repo",
}

CONTAINER_COMMANDS = {"install", "uninstall", "cleanup", "override"}
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
    # ostree-rs-ext 0.9.1 container_utils.rs: a container-format repo means a container
    # build unless there is strong evidence otherwise (a systemd unit, a booted ostree host).
    if "container" in os.environ:
        return True
    if Path("/run/.containerenv").exists() or Path("/.dockerenv").exists():
        return True
    return "INVOCATION_ID" not in os.environ and not Path("/run/ostree-booted").exists()


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
    obsoletes: list[Dep] = field(default_factory=list)
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


@dataclass(frozen=True)
class InstalledProvide:
    nevra: str  # the installed package that provides it
    evr: EVR | None  # None: an unversioned provide


def installed_provides() -> dict[str, list[InstalledProvide]]:
    """Provide name -> what the RPM database has for it (every base package is locked)."""
    qf = (
        "@@%{NAME}-%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}.%{ARCH}\\n"
        "[%{PROVIDENAME}\\t%{PROVIDEVERSION}\\n]"
    )
    proc = run_rpm(["-qa", "--qf", qf], check=False)
    out: dict[str, list[InstalledProvide]] = {}
    nevra = ""
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            nevra = line[2:]
            continue
        name, _, version = line.partition("\t")
        if name:
            out.setdefault(name, []).append(
                InstalledProvide(nevra, EVR.parse(version) if version else None)
            )
    return out


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
    obs = run_rpm(["-qp", "--nosignature", "--obsoletes", str(path)], check=False).stdout
    pkg.obsoletes = [Dep.parse(o) for o in obs.splitlines() if o.strip()]
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


def enabled_repos(
    enable: Iterable[str] = (), disable: Iterable[str] = (), every: bool = False
) -> list[Repo]:
    """The repos of /etc/yum.repos.d that are enabled (``every``: also the disabled ones)."""
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
            if not enabled and not every:
                continue
            urls = sect.get("baseurl", "").split()
            if not urls:
                raise EmuError(f"Cannot find a valid baseurl for repo: {section}")
            url = urls[0].replace("$basearch", basearch()).replace("$releasever", releasever())
            if not url.endswith("/"):
                url += "/"
            if sect.get("username"):  # libdnf's username=/password=: HTTP basic auth
                CREDENTIALS[url] = (sect.get("username", ""), sect.get("password", ""))
            repos.append(Repo(section, url))
    return repos


# baseurl -> (username, password) of the repos that have them (contract section 1)
CREDENTIALS: dict[str, tuple[str, str]] = {}


def fetch(url: str) -> bytes:
    request = urllib.request.Request(url)
    for prefix, (user, password) in CREDENTIALS.items():
        if url.startswith(prefix):
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
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


def entry_dep(entry: ET.Element) -> Dep:
    """A Requires/Obsoletes entry of primary.xml."""
    op = FLAG_OPS.get(entry.get("flags", ""), "")
    evr_text = ""
    if op:
        evr_text = entry.get("ver", "")
        if entry.get("epoch") and entry.get("epoch") != "0":
            evr_text = f"{entry.get('epoch')}:{evr_text}"
        if entry.get("rel"):
            evr_text += f"-{entry.get('rel')}"
    return Dep(entry.get("name", ""), op, evr_text)


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
            pkg.requires = [entry_dep(e) for e in fmt.findall("rpm:requires/rpm:entry", NS)]
            pkg.obsoletes = [entry_dep(e) for e in fmt.findall("rpm:obsoletes/rpm:entry", NS)]
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


def origin(pkg: Package) -> str:
    return "@commandline" if pkg.repo == "commandline" else pkg.repo


def depsolve_error(problems: list[list[str]]) -> EmuError:
    """libdnf's text: `` Problem: `` for one problem, `` Problem N: `` for several."""
    out = []
    for i, (title, *rules) in enumerate(problems, 1):
        head = " Problem: " if len(problems) == 1 else f" Problem {i}: "
        out.append(head + title + "".join(f"\n  - {rule}" for rule in rules))
    return EmuError(
        f"Could not depsolve transaction; {len(problems)} problem"
        f"{'s' if len(problems) != 1 else ''} detected:\n" + "\n".join(out)
    )


def resolve(
    requested: list[Package], repos: list[Repo], installed: dict[str, list[InstalledProvide]]
) -> list[Package]:
    """Close ``requested`` over Requires; see the module docstring for the rule.

    Every installed (base) package is locked at its version: a Requires that only a
    newer version of a base package satisfies is a depsolve problem naming both.
    """
    pool = [p for r in repos for p in r.packages]
    installed_names = {
        prov.nevra.rsplit("-", 2)[0] for provs in installed.values() for prov in provs
    }
    chosen: dict[str, Package] = {p.name: p for p in requested}
    queue = list(requested)
    problems: list[list[str]] = []
    while queue:
        pkg = queue.pop(0)
        for dep in pkg.requires:
            name = dep.name
            if name.startswith("rpmlib(") or name.startswith("config("):
                continue
            have = installed.get(name, [])
            if any(dep.satisfied_by(prov.evr) for prov in have):
                continue
            if any(c.provides_dep(dep) for c in chosen.values()):
                continue
            candidates = [p for p in pool if p.provides_dep(dep)]
            free = [p for p in candidates if p.name not in installed_names]
            provider = best(free)
            if provider is not None:
                chosen[provider.name] = provider
                queue.append(provider)
                continue
            shown = f"{dep.name} {dep.op} {dep.evr}".strip()
            locked = best(candidates)
            if locked is not None:
                base = installed_nevra(locked.name) or locked.name
                problems.append(
                    [
                        f"package {pkg.nevra} from {origin(pkg)} requires {shown}, "
                        "but none of the providers can be installed",
                        f"cannot install both {locked.nevra} from {origin(locked)} "
                        f"and {base} from @System",
                        "conflicting requests",
                    ]
                )
                continue
            if not have:
                if name.startswith("/") and os.path.lexists(name):
                    continue
                if is_soname(name) or name.startswith("/"):
                    continue  # provided by the (Debian) base OS, which has no RPM db entries
            problems.append(
                [
                    "conflicting requests",
                    f"nothing provides {shown} needed by {pkg.nevra} from {origin(pkg)}",
                ]
            )
    if problems:
        raise depsolve_error(problems)
    return sorted(chosen.values(), key=lambda p: p.name)


def resolving(
    requested: list[Package], repos: list[Repo], installed: dict[str, list[InstalledProvide]]
) -> list[Package]:
    """resolve() under rpm-ostree's progress line, which ends in ``done`` even on failure."""
    print("Resolving dependencies...", end="", flush=True)
    try:
        return resolve(requested, repos, installed)
    finally:
        print("done", flush=True)


def download(pkg: Package) -> Path:
    if pkg.repo == "commandline":
        return Path(pkg.location)
    dest_dir = CACHE_DIR / "pkgs" / pkg.repo
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / Path(urllib.parse.urlparse(pkg.location).path).name
    dest.write_bytes(fetch(pkg.location))
    return dest


# ---------------------------------------------------------- scriptlets


#: useradd/groupadd in scriptlets write sysusers.d fragments from this version on.
SYSUSERS_SINCE = "2022.16"
SYSUSERS_DIR = Path("/usr/lib/sysusers.d")
EMU_PYTHON = "/usr/libexec/nestcustom-emu/python3"
SCRIPT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

WRAPPER = """#!/bin/sh
# rpm-ostree's {tool} wrapper for package scriptlets: a sysusers.d fragment, then the real {tool}.
{python} {rpm_ostree} scriptlet-intercept {tool} -- "$0" "$@" || exit $?
exec {real} "$@"
"""

# Scriptlets may only preset units: everything else given to systemctl is ignored.
SYSTEMCTL_WRAPPER = """#!/bin/sh
# rpm-ostree's systemctl wrapper for package scriptlets: only `preset` reaches systemctl.
while [ $# -gt 0 ]; do
    case "${{1%%=*}}" in
        --*) ;;
        preset) exec {real} "$@" ;;
        *) echo "rpm-ostree-systemctl: Ignoring: $1" ;;
    esac
    shift
done
"""

# rpm's scriptlet tags -> rpm-ostree's names.
SCRIPTLET_NAMES = {"prein": "pre", "postin": "post", "preun": "preun", "postun": "postun"}
SCRIPTLET_FAILED = re.compile(r"^(?:warning|error): %(\w+)\((.+)\) scriptlet failed, (.*)$")


def parse_tool_args(
    args: Sequence[str], valued: dict[str, str], flags: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """useradd/groupadd command lines: option key -> value ("" for flags), operands."""
    opts: dict[str, str] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and len(arg) > 2:
            key, eq, value = arg.partition("=")
            if key in valued:
                if not eq:
                    i += 1
                    value = args[i] if i < len(args) else ""
                opts[valued[key]] = value
            elif key in flags:
                opts[flags[key]] = ""
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                short = "-" + arg[j]
                if short in valued:
                    value = arg[j + 1 :]
                    if not value:
                        i += 1
                        value = args[i] if i < len(args) else ""
                    opts[valued[short]] = value
                    break
                if short in flags:
                    opts[flags[short]] = ""
                j += 1
        else:
            operands.append(arg)
        i += 1
    return opts, operands


USERADD_VALUED = {
    **dict.fromkeys(("-c", "--comment"), "comment"),
    **dict.fromkeys(("-d", "--home-dir"), "home"),
    **dict.fromkeys(("-g", "--gid"), "group"),
    **dict.fromkeys(("-G", "--groups"), "groups"),
    **dict.fromkeys(("-s", "--shell"), "shell"),
    **dict.fromkeys(("-u", "--uid"), "uid"),
    **dict.fromkeys(("-b", "--base-dir"), "base"),
    **dict.fromkeys(("-e", "--expiredate"), "expire"),
    **dict.fromkeys(("-f", "--inactive"), "inactive"),
    **dict.fromkeys(("-k", "--skel"), "skel"),
    **dict.fromkeys(("-K", "--key"), "key"),
    **dict.fromkeys(("-p", "--password"), "password"),
    **dict.fromkeys(("-R", "--root"), "root"),
    **dict.fromkeys(("-P", "--prefix"), "prefix"),
}
USERADD_FLAGS = {
    **dict.fromkeys(("-r", "--system"), "system"),
    **dict.fromkeys(("-M", "--no-create-home"), "no-create-home"),
    **dict.fromkeys(("-m", "--create-home"), "create-home"),
    **dict.fromkeys(("-N", "--no-user-group"), "no-user-group"),
    **dict.fromkeys(("-U", "--user-group"), "user-group"),
    **dict.fromkeys(("-o", "--non-unique"), "non-unique"),
    **dict.fromkeys(("-l", "--no-log-init"), "no-log-init"),
}
GROUPADD_VALUED = {
    **dict.fromkeys(("-g", "--gid"), "gid"),
    **dict.fromkeys(("-K", "--key"), "key"),
    **dict.fromkeys(("-p", "--password"), "password"),
    **dict.fromkeys(("-R", "--root"), "root"),
    **dict.fromkeys(("-P", "--prefix"), "prefix"),
    **dict.fromkeys(("-U", "--users"), "users"),
}
GROUPADD_FLAGS = {
    **dict.fromkeys(("-f", "--force"), "force"),
    **dict.fromkeys(("-o", "--non-unique"), "non-unique"),
    **dict.fromkeys(("-r", "--system"), "system"),
}


def write_fragment(filename: str, entry: str) -> None:
    """A sysusers.d fragment, as rpm-ostree's scriptlet-intercept writes it (never overwritten)."""
    SYSUSERS_DIR.mkdir(parents=True, exist_ok=True)
    target = SYSUSERS_DIR / filename
    if target.exists():
        return
    target.write_text(f"# Generated by rpm-ostree\n{entry}\n")
    target.chmod(0o644)


def cmd_scriptlet_intercept(args: Sequence[str]) -> int:
    """``rpm-ostree scriptlet-intercept useradd|groupadd -- ARGV0 ARGS...`` (wrappers only)."""
    if len(args) < 3 or args[1] != "--":
        raise EmuError("Usage: rpm-ostree scriptlet-intercept TOOL -- ARGV0 [ARGS...]")
    tool, rest = args[0], list(args[3:])
    if tool == "useradd":
        opts, operands = parse_tool_args(rest, USERADD_VALUED, USERADD_FLAGS)
        if not operands:
            raise EmuError("Intercepting useradd: missing required username argument")
        name = operands[-1]
        uid, group = opts.get("uid"), opts.get("group")
        if uid is not None and group is not None:
            ident = f"{uid}:{group}"
        elif uid is not None:
            ident = uid
        elif group is not None:
            ident = f"-:{group}"
        else:
            ident = "-"
        gecos = f'"{opts["comment"]}"' if "comment" in opts else "-"
        home = opts.get("home", "")
        home = "-" if home in {"", "/"} else home
        shell = opts.get("shell", "")
        shell = "-" if shell in {"", "/sbin/nologin", "/usr/sbin/nologin"} else shell
        write_fragment(
            f"35-rpmostree-pkg-user-{name}.conf", f"u {name} {ident} {gecos} {home} {shell}"
        )
        return 0
    if tool == "groupadd":
        opts, operands = parse_tool_args(rest, GROUPADD_VALUED, GROUPADD_FLAGS)
        if not operands:
            raise EmuError("Intercepting groupadd: missing required groupname argument")
        name = operands[-1]
        write_fragment(f"30-rpmostree-pkg-group-{name}.conf", f"g {name} {opts.get('gid', '-')}")
        return 0
    raise EmuError(f"Unknown scriptlet-intercept tool '{tool}'")


def make_wrappers(directory: Path) -> None:
    """The wrappers scriptlets find first on their PATH: systemctl (every version);
    useradd and groupadd writing sysusers.d fragments (from 2022.16)."""
    systemctl = shutil.which("systemctl", path=SCRIPT_PATH)
    if systemctl is not None:
        (directory / "systemctl").write_text(SYSTEMCTL_WRAPPER.format(real=systemctl))
        (directory / "systemctl").chmod(0o755)
    if not at_least(SYSUSERS_SINCE):
        return
    for tool in ("useradd", "groupadd"):
        real = shutil.which(tool, path=SCRIPT_PATH)
        if real is None:
            continue
        wrapper = directory / tool
        wrapper.write_text(
            WRAPPER.format(tool=tool, python=EMU_PYTHON, rpm_ostree=sys.argv[0], real=real)
        )
        wrapper.chmod(0o755)


def rpm_transaction(mode: Sequence[str], paths: Sequence[Path], names: dict[str, str]) -> None:
    """``rpm`` with scriptlets; a failing scriptlet fails the transaction as in rpm-ostree.

    ``names`` maps the NEVRA rpm prints (name-version-release.arch) to the package name.
    """
    wrapdir = Path(tempfile.mkdtemp(prefix="rpmostree-wrappers-"))
    try:
        make_wrappers(wrapdir)
        script_path = f"{wrapdir}:{SCRIPT_PATH}"
        cmd = [
            "rpm",
            *mode,
            "--force-debian",
            "--nodeps",
            "--nosignature",
            "--define",
            f"_install_script_path {script_path}",
            *[str(p) for p in paths],
        ]
        sys.stdout.flush()
        proc = subprocess.run(
            cmd, stderr=subprocess.PIPE, text=True, check=False, env=librpm_environment()
        )
    finally:
        shutil.rmtree(wrapdir, ignore_errors=True)
        cleanup_rpmdb()
    failed: str | None = None
    for line in proc.stderr.splitlines():
        match = SCRIPTLET_FAILED.match(line)
        if match is None:
            if not line.startswith("error: ") or not line.endswith(": install failed"):
                print(line, file=sys.stderr)
            continue
        if failed is None:
            tag, nevra, status = match.groups()
            name = names.get(nevra, nevra)
            code = re.search(r"exit status (\d+)", status)
            why = f"Child process exited with code {code.group(1)}" if code else status
            script = SCRIPTLET_NAMES.get(tag, tag)
            failed = (
                f"Running %{script} for {name}: bwrap(/bin/sh): {why}; "
                f"run journalctl -t 'rpm-ostree({name}.{script})' for more information"
            )
    sys.stderr.flush()
    if failed is not None:
        raise EmuError(failed)
    if proc.returncode != 0:
        raise EmuError(f"Running rpm transaction: rpm exited with status {proc.returncode}")


def librpm_environment() -> dict[str, str]:
    """rpm's environment as NestOS's librpm 4.17 sees it: its dbAdd() stamps the clock
    whatever SOURCE_DATE_EPOCH says (rpm honours it only from 4.18)."""
    return {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}


def cleanup_rpmdb() -> None:
    """What rpm-ostree removes from the rpmdb after a container transaction (2022.16
    rust/src/composepost.rs postprocess_cleanup_rpmdb_impl; 2022.8 rpmdb_leftover_files)."""
    if not RPMDB_DIR.is_dir():
        return
    for entry in RPMDB_DIR.iterdir():
        if entry.name in {".dbenv.lock", ".rpm.lock"} or entry.name.startswith("__db."):
            entry.unlink(missing_ok=True)


def rpm_install(pkgs: Sequence[tuple[Package, Path]], upgrade: bool = False) -> None:
    mode = ["-U", "--oldpackage", "--replacefiles"] if upgrade else ["-i"]
    names = {f"{p.name}-{p.version}-{p.release}.{p.arch}": p.name for p, _ in pkgs}
    rpm_transaction(mode, [path for _, path in pkgs], names)


# ---------------------------------------------------------------- commands


def split_options(
    args: Sequence[str], flags: set[str], valued: set[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """GOption-style parsing; an unknown option is ``Unknown option <arg>`` (as glib says)."""
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


def source_rpm_error(arg: str) -> EmuError:
    return EmuError(
        f"Handling argument {arg}: {arg} appears to be a source RPM "
        "which are not usually intended to be installed"
    )


def fetch_local(arg: str) -> Package:
    """A local or remote RPM argument (rpm-ostree's client handles these first)."""
    if arg.endswith(".src.rpm"):
        raise source_rpm_error(arg)
    if arg.startswith(("http://", "https://")):
        dest_dir = CACHE_DIR / "pkgs" / "commandline"
        dest_dir.mkdir(parents=True, exist_ok=True)
        name = Path(urllib.parse.urlparse(arg).path).name or "download.rpm"
        dest = dest_dir / name
        try:
            dest.write_bytes(fetch(arg))
        except EmuError as exc:
            raise EmuError(f"While fetching {arg}: {exc}") from exc
        path = dest
    else:
        path = (
            Path(urllib.parse.unquote(urllib.parse.urlparse(arg).path))
            if arg.startswith("file://")
            else Path(arg)
        )
        if not path.is_file():
            raise EmuError(f"Handling argument {arg}: No such file or directory (os error 2)")
    pkg = read_local_rpm(path, arg)
    if pkg.is_source:
        raise source_rpm_error(arg)
    return pkg


# In a container -n/--dry-run, --uninstall and --idempotent are accepted and ignored;
# --enablerepo/--disablerepo are not options of 2022.8 or 2022.16.
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
INSTALL_VALUED = {"--uninstall", "--sysroot", "--os"}


def load_repos(repos: list[Repo]) -> None:
    if repos:
        print("Enabled rpm-md repositories: " + " ".join(r.repo_id for r in repos))
    for repo in repos:
        print(f"Updating metadata for '{repo.repo_id}'...", end="", flush=True)
        load_repo(repo)
        print("done")
        print(f"rpm-md repo '{repo.repo_id}'; solvables: {len(repo.packages)}")


def print_plan(plan: Sequence[Package]) -> None:
    """The transaction plan; 2022.8 prints none."""
    if not at_least("2022.10"):
        return
    print(f"Installing {len(plan)} packages:")
    for pkg in plan:
        print(f"  {pkg.nevra} ({pkg.repo})")


def cmd_install(args: Sequence[str]) -> int:
    _opts, names = split_options(args, INSTALL_FLAGS, INSTALL_VALUED)
    if not names:
        raise EmuError("At least one PACKAGE must be specified")
    local_ok = at_least("2022.10")
    not_found: list[str] = []
    requested: list[Package] = []
    for arg in names:
        if is_local_arg(arg) and local_ok:
            requested.append(fetch_local(arg))
    repos = enabled_repos()
    load_repos(repos)
    pool = [p for r in repos for p in r.packages]
    for arg in names:
        if is_local_arg(arg):
            if not local_ok:
                not_found.append(arg)
            continue
        candidate = best(p for p in pool if p.provides_dep(Dep(arg)))
        if candidate is None:
            if installed_nevra(arg) is None:
                not_found.append(arg)
            continue
        if installed_nevra(candidate.name) is None:
            requested.append(candidate)
    if not_found:
        raise EmuError("Packages not found: " + ", ".join(not_found))
    plan = resolving(requested, repos, installed_provides())
    if not plan:
        print("Empty transaction")
        return 0
    print_plan(plan)
    rpm_install([(p, download(p)) for p in plan])
    return 0


def check_removable(names: Sequence[str]) -> list[str]:
    """The installed NEVRAs of ``names``; libdnf's errors for missing or needed ones."""
    nevras: list[str] = []
    for name in names:
        nevra = installed_nevra(name)
        if nevra is None:
            raise EmuError(f"No installed package matches '{name}'")
        nevras.append(nevra)
    test = run_rpm(["-e", "--test", *names], check=False)
    if test.returncode != 0:
        problems = [
            [ln.strip()]
            for ln in (test.stderr + test.stdout).splitlines()
            if ln.strip() and not ln.startswith("error: Failed dependencies")
        ]
        raise depsolve_error(problems)
    return nevras


def remove_packages(names: Sequence[str], nevras: Sequence[str]) -> None:
    print("Removed:")
    for nevra in nevras:
        print(f"  {nevra}")
    sys.stdout.flush()
    proc = subprocess.run(
        ["rpm", "-e", "--force-debian", *names], check=False, env=librpm_environment()
    )
    cleanup_rpmdb()
    if proc.returncode != 0:
        raise EmuError(f"Running rpm transaction: rpm exited with status {proc.returncode}")


def cmd_override_remove(args: Sequence[str]) -> int:
    opts, names = split_options(
        args,
        {"-r", "--reboot", "--lock-finalization", "--cache-only", "-C"},
        {"--install", "--replace", "--sysroot", "--os"},
    )
    if not names:
        raise EmuError("At least one PACKAGE must be specified")
    replacements = opts.get("--replace", [])
    # --install beside it is honoured from 2022.17 only; 2022.16 drops it silently.
    installs = opts.get("--install", []) if at_least("2022.17") else []
    if replacements:
        return override_replace(replacements, removals=names, installs=installs)
    nevras = check_removable(names)
    remove_packages(names, nevras)
    if installs:
        return cmd_install(installs)
    return 0


def override_replace(
    items: Sequence[str],
    removals: Sequence[str] = (),
    installs: Sequence[str] = (),
    from_repo: str | None = None,
) -> int:
    """Replace base packages by local/remote RPMs (or by a repo's packages with ``from_repo``),
    removing ``removals`` in the same transaction."""
    new: list[Package] = []
    if from_repo is None:
        if not at_least("2022.10"):
            raise EmuError(f"Failed to add local pkg {items[0]} to sack")
        new = [fetch_local(arg) for arg in items]
    repos = enabled_repos()
    if from_repo is not None:
        source = [r for r in enabled_repos(every=True) if r.repo_id == from_repo]
        if not source:
            raise EmuError(f"Unknown rpm-md repository: {from_repo}")
        repos = [*repos, *[r for r in source if r.repo_id not in {x.repo_id for x in repos}]]
    load_repos(repos)
    if from_repo is not None:
        pool = [p for r in repos if r.repo_id == from_repo for p in r.packages]
        missing: list[str] = []
        for name in items:
            candidate = best(p for p in pool if p.name == name)
            if candidate is None:
                missing.append(name)
            else:
                new.append(candidate)
        if missing:
            raise EmuError("Packages not found: " + ", ".join(missing))
    replaced: list[tuple[Package, str]] = []
    for pkg in new:
        old = installed_nevra(pkg.name)
        if old is not None:
            replaced.append((pkg, old))
            continue
        for obs in pkg.obsoletes:
            victim = installed_nevra(obs.name)
            if victim is not None and obs.satisfied_by(EVR.parse(victim.rsplit("-", 2)[1])):
                raise EmuError(f"Package {pkg.nevra} doesn't replace a package of the same name")
    removal_nevras = check_removable(removals) if removals else []
    extra: list[Package] = []
    if installs:
        pool = [p for r in repos for p in r.packages]
        for name in installs:
            candidate = best(p for p in pool if p.provides_dep(Dep(name)))
            if candidate is None:
                raise EmuError(f"Packages not found: {name}")
            extra.append(candidate)
    installed = installed_provides()
    for pkg, _old in replaced:  # the replaced base packages no longer provide anything
        for provs in installed.values():
            provs[:] = [p for p in provs if p.nevra.rsplit("-", 2)[0] != pkg.name]
    plan = resolving([*new, *extra], repos, installed)
    if removals:
        remove_packages(removals, removal_nevras)
    if replaced:
        print("Replaced:")
        for pkg, old in replaced:
            print(f"  {old} -> {pkg.nevra}")
    rest = [p for p in plan if all(p is not r for r, _ in replaced)]
    if rest:
        print_plan(rest)
    rpm_install([(p, download(p)) for p in plan], upgrade=True)
    return 0


def cmd_override_replace(args: Sequence[str]) -> int:
    valued = {"--remove", "--install", "--sysroot", "--os"}
    if at_least("2022.16"):
        valued.add("--from")
    opts, items = split_options(
        args,
        {"-r", "--reboot", "--experimental", "--lock-finalization", "-C", "--cache-only"},
        valued,
    )
    if not items:
        raise EmuError("At least one PACKAGE must be specified")
    removals = opts.get("--remove", [])
    installs = opts.get("--install", []) if at_least("2022.17") else []
    froms = opts.get("--from", [])
    if froms and "--experimental" in opts:
        kind, _, repo_id = froms[-1].partition("=")
        if kind != "repo" or not repo_id:
            raise EmuError(f"Invalid --from argument: {froms[-1]}")
        return override_replace(items, removals, installs, from_repo=repo_id)
    if any(not is_local_arg(a) for a in items):
        raise EmuError("Non-local replacement overrides not implemented yet")
    return override_replace(items, removals, installs)


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
    if command == "scriptlet-intercept" and at_least(SYSUSERS_SINCE):
        return cmd_scriptlet_intercept(rest)
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
    return cmd_cleanup(rest)


def main() -> int:
    try:
        return dispatch(sys.argv[1:])
    except EmuError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
