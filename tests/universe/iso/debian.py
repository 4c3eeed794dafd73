"""Real Debian programs, repackaged unchanged as RPMs for the universe's DVD ISOs.

A DVD needs a whole userland, not a few binaries: the images built from it
start FROM scratch, so libc, bash, rpm, dnf and systemd must all come from the
ISO. The package set is what `apt-get` itself chooses for ROOTS on an empty
system (recommends off), minus Debian's own machinery (DENY). Each .deb
becomes one RPM of the same name and version, its Requires the Debian
Depends/Pre-Depends that stay in the set, its files marked as rpmbuild marks
them: man, info and /usr/share/doc as %doc (rpmbuild's %__docdir_path),
/usr/share/locale/LANG/... as %lang(LANG), /etc files as %config(noreplace).

All RPMs come out of one rpmbuild run (one sub-package per .deb), which is
several times faster than one run per package.

The release is the host's (bookworm: rpm 4.18 with sqlite) or another one
through aptsuite.py (bullseye: rpm 4.16 with BerkeleyDB, for the EL8-like DVD).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .aptsuite import AptSuite

#: What the ISO must be able to install: a shell and the core tools, the image's own rpm
#: and dnf (recipes build on the image with dnf), systemd as init, and tools with docs,
#: man pages and translations. The Debian packages they need come along.
BASEOS_ROOTS = (
    "bash",
    "coreutils",
    "rpm",
    "dnf",
    "systemd",
    "passwd",
    "mount",
    "procps",
    "grep",
    "sed",
    "findutils",
    "tar",
    "gzip",
    "less",
    "libcap2-bin",
    "libc-bin",
)
APPSTREAM_ROOTS = ("strace", "jq")

#: Debian's own machinery and what only it needs; a NewStart system has none of it.
DENY = frozenset(
    {
        "adduser",
        "apt",
        "apt-utils",
        "base-files",
        "debconf-i18n",
        "debian-archive-keyring",
        "deltarpm",
        "libapt-pkg6.0",
        "liblocale-gettext-perl",
        "libtext-charwidth-perl",
        "libtext-iconv-perl",
        "libtext-wrapi18n-perl",
        "debconf",
        "debianutils",
        "debugedit",
        "dirmngr",
        "dpkg",
        "gnupg",
        "gnupg-l10n",
        "gnupg-utils",
        "gpg-agent",
        "gpg-wks-client",
        "gpg-wks-server",
        "gpgsm",
        "init-system-helpers",
        "libfile-find-rule-perl",
        "libnumber-compare-perl",
        "libperl5.32",
        "libperl5.36",
        "libtext-glob-perl",
        "lsb-base",
        "perl",
        "perl-base",
        "perl-modules-5.32",
        "perl-modules-5.36",
        "pinentry-curses",
        "sysvinit-utils",
        "usrmerge",
    }
)

#: Requires a distribution adds that Debian does not have: rpm reads its database path
#: from the distribution's rpm configuration, and libc comes after the directory layout.
EXTRA_REQUIRES = {
    "rpm-common": ("newstart-rpm-config",),
    "libc6": ("filesystem",),
    "bash": ("filesystem",),
}

_LOCALE = re.compile(
    r"^/usr/share/(?:locale|man)/([a-z]{2,3}(?:_[A-Za-z0-9]+)?(?:\.[A-Za-z0-9-]+)?(?:@[a-z]+)?)/"
)


@dataclass(frozen=True)
class Deb:
    name: str
    version: str  # Debian version, epoch included
    arch: str
    depends: tuple[tuple[str, ...], ...]  # each clause: alternatives, first preferred
    recommends: tuple[tuple[str, ...], ...]  # weak dependencies: RPM Recommends
    provides: tuple[str, ...]

    @property
    def rpm_evr(self) -> tuple[str, str, str]:
        """(epoch, version, release) in RPM's grammar."""
        epoch, _, upstream = self.version.rpartition(":")
        version, _, release = upstream.rpartition("-")
        if not version:
            version, release = upstream, "0"
        return epoch, version.replace("-", "_"), release.replace("-", "_")


def _run(argv: Sequence[str], cwd: Path | None = None) -> str:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def apt_choice(roots: Iterable[str], suite: AptSuite) -> list[str]:
    """The packages apt installs for `roots` on an empty system, recommends included.

    Recommends become RPM weak dependencies: a standard install (weak deps on)
    takes them, an optimized one (weak deps off) leaves them out, as on RHEL.
    """
    status = Path("/tmp/nestcustom-empty-dpkg-status")
    status.write_text("")
    out = _run(
        [
            "apt-get",
            *suite.options,
            "-s",
            "-o",
            f"Dir::State::status={status}",
            "-o",
            "APT::Install-Recommends=true",
            "install",
            *roots,
        ]
    )
    return sorted({line.split()[1] for line in out.splitlines() if line.startswith("Inst ")})


def _clauses(field: str) -> tuple[tuple[str, ...], ...]:
    clauses = []
    for clause in field.split(","):
        names = []
        for alternative in clause.split("|"):
            name = alternative.strip().split(" ", 1)[0].split(":", 1)[0]
            if name:
                names.append(name)
        if names:
            clauses.append(tuple(names))
    return tuple(clauses)


def describe(names: Sequence[str], suite: AptSuite) -> dict[str, Deb]:
    """Version, architecture, dependencies and provides of each package (candidate versions)."""
    out = _run(["apt-cache", *suite.options, "show", "--no-all-versions", *names])
    debs: dict[str, Deb] = {}
    for stanza in out.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")):
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name = fields["Package"]
        if name in debs:
            continue
        depends = _clauses(fields.get("Pre-Depends", "")) + _clauses(fields.get("Depends", ""))
        provides = tuple(p for (p,) in _clauses(fields.get("Provides", "")) if p)
        recommends = _clauses(fields.get("Recommends", ""))
        debs[name] = Deb(
            name, fields["Version"], fields["Architecture"], depends, recommends, provides
        )
    return debs


def package_set(roots: Iterable[str], suite: AptSuite) -> dict[str, Deb]:
    """The Debian packages that the roots need, without DENY, closed under Depends."""
    chosen = [n for n in apt_choice(roots, suite) if n not in DENY]
    return describe(chosen, suite)


def rpm_requires(
    deb: Deb, debs: Mapping[str, Deb], clauses: tuple[tuple[str, ...], ...] | None = None
) -> list[str]:
    """Debian Depends as RPM Requires: per clause the first alternative in the set."""
    providers: dict[str, str] = {}
    for other in debs.values():
        for virtual in other.provides:
            providers.setdefault(virtual, other.name)
    requires: set[str] = set()
    for clause in deb.depends if clauses is None else clauses:
        for name in clause:
            target = name if name in debs else providers.get(name)
            if target is not None:
                if target != deb.name:
                    requires.add(target)
                break
    if clauses is None:
        requires.update(EXTRA_REQUIRES.get(deb.name, ()))
    return sorted(requires)


def _quote(path: str) -> str:
    return '"' + path.replace("%", "%%") + '"'


def file_list(stage: Path, taken: set[str]) -> list[str]:
    """%files lines for one extracted .deb; paths another package already has are dropped."""
    lines = []
    for path in sorted(stage.rglob("*")):
        rel = "/" + path.relative_to(stage).as_posix()
        if path.is_dir() and not path.is_symlink():
            continue
        if rel in taken:
            path.unlink()
            continue
        taken.add(rel)
        attrs = []
        if match := _LOCALE.match(rel):
            attrs.append(f"%lang({match[1]})")
        if rel.startswith("/etc/") and not path.is_symlink():
            attrs.append("%config(noreplace)")
        lines.append(" ".join([*attrs, _quote(rel)]))
    return lines


def spec_text(
    debs: Mapping[str, Deb], lists: Mapping[str, Path], stages: Path, codename: str
) -> str:
    head = [
        "%global debug_package %{nil}",
        "%global __os_install_post %{nil}",
        "%global _build_id_links none",
        "Name: nc-debian-repack",
        "Version: 1",
        "Release: 1",
        f"Summary: Debian {codename} packages repackaged for the nestcustom test universe",
        "License: see /usr/share/doc/*/copyright",
        "AutoReqProv: no",
        "%description",
        "Container of the repackaged sub-packages.",
    ]
    body: list[str] = []
    for name in sorted(debs):
        deb = debs[name]
        epoch, version, release = deb.rpm_evr
        body += [
            f"%package -n {name}",
            *([f"Epoch: {epoch}"] if epoch else []),
            f"Version: {version}",
            # %{?dist}: the distribution's tag (.zncgsl6 on the EL8-like DVD), none otherwise
            f"Release: {release}%{{?dist}}",
            f"Summary: {name} from Debian {codename}, repackaged unchanged",
            "AutoReqProv: no",  # per sub-package: the main package's setting does not carry over
            # sub-packages are the machine's architecture unless noarch (Debian's "all")
            *(["BuildArch: noarch"] if deb.arch == "all" else []),
            *(f"Requires: {r}" for r in rpm_requires(deb, debs)),
            *(f"Recommends: {r}" for r in rpm_requires(deb, debs, deb.recommends)),
            f"%description -n {name}",
            f"The files of the Debian package {name} {deb.version}, unchanged.",
            f"%files -n {name} -f {lists[name]}",
        ]
    install = [
        "%install",
        f'for d in {stages}/*; do cp -a "$d"/. %{{buildroot}}/; done',
    ]
    return "\n".join(head + install + body) + "\n"


def repack(
    debs: Mapping[str, Deb], workdir: Path, suite: AptSuite, defines: Mapping[str, str]
) -> list[Path]:
    """Download the .debs and turn them into RPMs with one rpmbuild run; returns the RPMs.

    defines: rpm macros of the distribution the RPMs are built for (payload, dist,
    vendor, packager).
    """
    download, stages, topdir = workdir / "debs", workdir / "stage", workdir / "rpmbuild"
    for d in (download, stages, topdir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    _run(
        ["apt-get", *suite.options, "download", *(f"{d.name}={d.version}" for d in debs.values())],
        cwd=download,
    )
    taken: set[str] = set()
    lists: dict[str, Path] = {}
    for name in sorted(debs):
        (deb_file,) = download.glob(f"{name}_*.deb")
        stage = stages / name
        _run(["dpkg-deb", "-x", str(deb_file), str(stage)])
        lists[name] = workdir / f"{name}.files"
        lists[name].write_text("\n".join(file_list(stage, taken)) + "\n")
    spec = workdir / "repack.spec"
    spec.write_text(spec_text(debs, lists, stages, suite.codename))
    _run(
        [
            "rpmbuild",
            "-bb",
            "--define",
            f"_topdir {topdir}",
            "--define",
            f"_smp_build_nthreads {os.cpu_count() or 2}",
            *(x for key, value in defines.items() for x in ("--define", f"{key} {value}")),
            str(spec),
        ]
    )
    shutil.rmtree(stages)
    return sorted((topdir / "RPMS").rglob("*.rpm"))
