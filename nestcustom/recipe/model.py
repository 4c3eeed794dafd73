"""The recipe as frozen, typed values: what flows from validation to rendering and building."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import astuple, dataclass, field
from enum import Enum
from typing import Any

from nestcustom.recipe.parts import (
    RUN_MOUNTED_FILES,
    BuildChecks,
    CommandCheck,
    Directory,
    Download,
    Edit,
    FileCheck,
    FileSpec,
    Group,
    KernelArguments,
    Rechunk,
    Selinux,
    SelinuxModule,
    Signing,
    SigningScope,
    Symlink,
    Tests,
    Units,
    Updates,
    User,
    UserUnits,
)

__all__ = [
    "RUN_MOUNTED_FILES",
    "BuildChecks",
    "CommandCheck",
    "Directory",
    "Download",
    "Edit",
    "FileCheck",
    "FileSpec",
    "Group",
    "KernelArguments",
    "Rechunk",
    "Selinux",
    "SelinuxModule",
    "Signing",
    "SigningScope",
    "Symlink",
    "Tests",
    "Units",
    "Updates",
    "User",
    "UserUnits",
]

DEFAULT_TAG = "localhost/nestcustom/{name}:latest"  # {name}: the recipe's name
ARCH_SUFFIX = re.compile(r"-(x86_64|aarch64|riscv64|loongarch64)$")


class Flavor(str, Enum):
    NESTOS = "nestos"  # rpm-ostree, bootable, layers end in `ostree container commit`
    NEWSTART = "newstart"  # plain container image built with dnf


@dataclass(frozen=True, order=True)
class RpmOstreeVersion:
    """An rpm-ostree release such as 2022.16 (year.release), ordered."""

    year: int
    release: int

    @classmethod
    def parse(cls, text: str) -> RpmOstreeVersion:
        year, release = text.split(".")
        return cls(int(year), int(release))

    def __str__(self) -> str:
        return f"{self.year}.{self.release}"


# The contract's version gates (section 0 and 1).
DEFAULT_RPM_OSTREE = RpmOstreeVersion(2022, 16)
LOCAL_RPM_INSTALL_SINCE = RpmOstreeVersion(2022, 10)
REPLACE_FROM_REPO_SINCE = RpmOstreeVersion(2022, 16)
REMOVE_WITH_INSTALL_SINCE = RpmOstreeVersion(2022, 17)
KERNEL_REPLACE_INITRAMFS_SINCE = RpmOstreeVersion(2022, 18)
# ostree-ext 0.8.4 (rpm-ostree 2022.13) applies a derived layer's whiteouts on hosts (contract 6)
WHITEOUTS_APPLIED_SINCE = RpmOstreeVersion(2022, 13)
RECOMMENDS_KNOB_SINCE = RpmOstreeVersion(2024, 7)  # rpm-ostreed.conf Recommends= (#4974)


@dataclass(frozen=True)
class Base:
    image: str
    digest: str | None = None
    flavor: Flavor = Flavor.NESTOS
    rpm_ostree: RpmOstreeVersion = DEFAULT_RPM_OSTREE

    @property
    def reference(self) -> str:
        """What FROM names: the image, pinned by digest when one is given."""
        return f"{self.image}@{self.digest}" if self.digest else self.image

    @property
    def tag_arch(self) -> str | None:
        """The architecture a NestOS tag ends in (`...-x86_64`), if any."""
        _, _, tag = self.image.rpartition("/")[2].partition(":")
        match = ARCH_SUFFIX.search(tag)
        return match.group(1) if match else None


@dataclass(frozen=True)
class Swap:
    """Base packages removed and others installed in one transaction (1:1 or N:M)."""

    remove: tuple[str, ...]
    install: tuple[str, ...]


@dataclass(frozen=True)
class Script:
    """A script file of the project, run in a layer through a read-only bind mount."""

    path: str  # POSIX path relative to the project root (the build context)
    args: tuple[str, ...] = ()
    interpreter: tuple[str, ...] = ("/bin/sh",)  # from its #! line
    sha256: str = ""  # of the content, so the recipe digest changes with the script


@dataclass(frozen=True)
class LocalRpms:
    """RPM files from a builder stage or an image, installed with the layer's packages."""

    source: str  # a stage of the recipe, or an image reference
    path: str  # absolute path there; the file name may be a glob (/out/*.rpm)
    index: int = field(default=0, compare=False)  # its place in install:, to locate problems


@dataclass(frozen=True)
class LayerStep:
    """One of a layer's `steps:`, run in the order written: exactly one kind is set."""

    kind: str  # run | script | files | initramfs | selinux
    command: tuple[str, ...] = ()
    script: Script | None = None
    files: tuple[FileSpec, ...] = ()
    initramfs: Initramfs | None = None
    selinux: Selinux | None = None


@dataclass(frozen=True)
class Layer:
    name: str
    description: str = ""
    install: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    swap: tuple[Swap, ...] = ()
    run: tuple[tuple[str, ...], ...] = ()  # commands after the package changes, no shell
    scripts: tuple[Script, ...] = ()  # after the commands
    env: tuple[tuple[str, str], ...] = ()  # for the commands and scripts
    repos: tuple[Repo, ...] = ()  # for this layer's step only (mounted, never in the image)
    replace_from: tuple[str, tuple[str, ...]] | None = None  # (repo id, base packages)
    weak_deps: bool = True  # installs bring Recommends too (dnf only can skip them)
    files: tuple[FileSpec, ...] = ()  # project files, after the package changes
    steps: tuple[LayerStep, ...] = ()  # last, in the order written
    local_rpms: tuple[LocalRpms, ...] = ()  # RPM files installed with `install`
    # Where the layer was written (FILE:LINE:COL), for build errors; not part of its identity.
    origin: str = field(default="", compare=False)

    @property
    def changes_packages(self) -> bool:
        return bool(
            self.install
            or self.local_rpms
            or self.remove
            or self.replace
            or self.swap
            or self.replace_from
        )

    @property
    def is_empty(self) -> bool:
        return not (self.changes_packages or self.run or self.scripts or self.files or self.steps)

    @property
    def runs_programs(self) -> bool:
        """Whether the layer runs more than package changes and file copies: commands,
        scripts, dracut or semodule (a failure then is not rpm-ostree's)."""
        return bool(self.run or self.scripts or any(s.kind != "files" for s in self.steps))

    @property
    def all_files(self) -> tuple[FileSpec, ...]:
        """Its files: and those of its files steps, in the order they are installed."""
        return self.files + tuple(f for step in self.steps for f in step.files)


@dataclass(frozen=True)
class Stage:
    """A builder stage: built from its own image; only what is copied out reaches the image."""

    name: str
    image: str
    packages: str = "dnf"  # the package manager its layers' install: uses
    files: tuple[FileSpec, ...] = ()  # copied into the stage before its layers
    layers: tuple[Layer, ...] = ()
    origin: str = field(default="", compare=False)


@dataclass(frozen=True)
class KernelModule:
    name: str
    stage: str | None = None  # the stage that built `src`
    src: str | None = None  # a path in the stage, or project-relative; None: from an RPM
    load: bool = True  # modules-load.d
    options: str | None = None  # modprobe.d
    sha256: str | None = None  # of a project file


@dataclass(frozen=True)
class Initramfs:
    regenerate: bool = False
    drivers: tuple[str, ...] = ()  # dracut --add-drivers
    add: tuple[str, ...] = ()  # dracut --add (modules)
    omit: tuple[str, ...] = ()  # dracut --omit (modules)
    omit_drivers: tuple[str, ...] = ()  # dracut --omit-drivers
    install: tuple[str, ...] = ()  # dracut --install (files of the image)

    @property
    def identity(self) -> list[Any]:
        """What shapes the image; the options added later count only when set, so recipes
        without them keep their digests."""
        more = (self.add, self.omit, self.omit_drivers, self.install)
        return [self.regenerate, list(self.drivers)] + (
            [list(m) for m in more] if any(more) else []
        )


@dataclass(frozen=True)
class Repo:
    id: str
    name: str | None = None
    baseurl: str | None = None
    metalink: str | None = None
    mirrorlist: str | None = None
    gpgcheck: bool = True
    gpgkey: str | None = None
    enabled: bool = True
    repo_gpgcheck: bool = False
    secret: str | None = None  # the build secret with USER:PASSWORD (a layer's repo only)


@dataclass(frozen=True)
class Recipe:
    path: str  # POSIX path relative to the project root
    name: str
    base: Base
    layers: tuple[Layer, ...] = ()
    description: str = ""
    arch: str | None = None
    repos: tuple[Repo, ...] = ()
    files: tuple[FileSpec, ...] = ()
    units_enable: tuple[str, ...] = ()
    units_disable: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    tests: Tests = field(default_factory=Tests)
    stages: tuple[Stage, ...] = ()
    kernel_modules: tuple[KernelModule, ...] = ()
    initramfs: Initramfs = field(default_factory=Initramfs)
    checks: BuildChecks = field(default_factory=BuildChecks)
    dropins: tuple[FileSpec, ...] = ()  # unit drop-ins, installed like files
    keys: tuple[FileSpec, ...] = ()  # repo signing keys, installed before the layers
    repo_files: tuple[Download, ...] = ()  # vendors' .repo files, fetched before the layers
    base_repos_enable: tuple[str, ...] = ()
    base_repos_disable: tuple[str, ...] = ()
    symlinks: tuple[Symlink, ...] = ()
    directories: tuple[Directory, ...] = ()
    removals: tuple[str, ...] = ()
    downloads: tuple[Download, ...] = ()
    edits: tuple[Edit, ...] = ()
    units: Units = field(default_factory=Units)
    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    signing: Signing = field(default_factory=Signing)
    selinux: Selinux = field(default_factory=Selinux)
    kernel_arguments: KernelArguments = field(default_factory=KernelArguments)
    user_units: tuple[UserUnits, ...] = ()
    flatpaks: tuple[str, ...] = ()  # refused by a rule (a host drops /var/lib/flatpak)
    # /opt/NAME paths the recipe's files go to, moved to /usr/lib/opt/NAME (rpm-ostree's
    # handling) and linked back at boot by a tmpfiles.d fragment.
    opt_links: tuple[str, ...] = ()
    step_timeout: float | None = None  # a build setting: not part of the digest
    updates: Updates | None = None  # host-side updates (updater units and scripts)
    rechunk: Rechunk | None = None  # the built image re-cut into chunks (image/rechunk)

    @property
    def has_early_step(self) -> bool:
        """Whether keys or base repos are set up before the layers."""
        return bool(
            self.keys or self.repo_files or self.base_repos_enable or self.base_repos_disable
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The build secrets (`nestcustom build --secret id=ID,...`) its steps need, sorted."""
        named = [r.secret for layer in self.layers for r in layer.repos]
        named += [d.secret for d in self.downloads]
        return tuple(sorted({s for s in named if s is not None}))

    @property
    def has_files_step(self) -> bool:
        """Whether the image gets the step that installs files, links, directories, users."""
        return bool(
            any(spec.source is None and not spec.copied_alone for spec in self.files)
            or self.dropins
            or self.symlinks
            or self.directories
            or self.removals
            or self.downloads
            or self.edits
            or self.users
            or self.groups
            or self.signing.scopes
            or self.kernel_arguments.append
            or self.user_units
            or self.opt_links
            or self.updates is not None
        )

    @property
    def local_rpm_layers(self) -> tuple[Layer, ...]:
        """The layers that install RPM files from a stage or an image."""
        return tuple(layer for layer in self.layers if layer.local_rpms)

    @property
    def digest(self) -> str:
        """sha256 of everything that shapes the image (not where the recipe lives)."""
        # Package lists are sets to rpm-ostree: order and repeats must not change the digest.
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "arch": self.arch,
            "base": [
                self.base.image,
                self.base.digest,
                self.base.flavor.value,
                str(self.base.rpm_ostree),
            ],
            "layers": [_layer_identity(layer) for layer in self.layers],
            "repos": [astuple(repo) for repo in self.repos],
            "files": [astuple(spec) for spec in self.files],
            "units": [sorted(set(self.units_enable)), sorted(set(self.units_disable))],
            "labels": self.labels,
            "stages": [
                [
                    s.name,
                    s.image,
                    s.packages,
                    [astuple(f) for f in s.files],
                    [_layer_identity(la) for la in s.layers],
                ]
                for s in self.stages
            ],
            "kernel-modules": [astuple(m) for m in self.kernel_modules],
            "initramfs": self.initramfs.identity,
            "checks": [
                self.checks.host_rules,
                sorted(set(self.checks.packages)),
                sorted(set(self.checks.files)),
                list(self.checks.commands),
            ],
            "dropins": [astuple(s) for s in self.dropins],
            "keys": [astuple(s) for s in self.keys],
            "repo-files": [astuple(r) for r in self.repo_files],
            "base-repos": [sorted(self.base_repos_enable), sorted(self.base_repos_disable)],
            "symlinks": [astuple(s) for s in self.symlinks],
            "directories": [astuple(d) for d in self.directories],
            "removals": list(self.removals),
            "downloads": [x.identity for x in self.downloads],
            "edits": [astuple(e) for e in self.edits],
            "units-more": astuple(self.units),
            "users": [astuple(u) for u in self.users],
            "groups": [astuple(g) for g in self.groups],
            "signing": astuple(self.signing),
        }
        # Absent when unset: the digests of recipes without them stay as they were.
        if self.selinux != Selinux():
            data["selinux"] = astuple(self.selinux)
        if self.kernel_arguments != KernelArguments():
            data["kernel-arguments"] = self.kernel_arguments.lists
        if self.user_units:
            data["user-units"] = [astuple(u) for u in self.user_units]
        if self.flatpaks:
            data["flatpaks"] = list(self.flatpaks)
        if self.opt_links:
            data["opt-links"] = list(self.opt_links)
        if self.updates is not None:
            data["updates"] = astuple(self.updates)
        if self.rechunk is not None:
            data["rechunk"] = astuple(self.rechunk)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _layer_identity(layer: Layer) -> list[Any]:
    """What of a layer shapes the image: package lists as sets, commands and scripts in order."""
    return [
        layer.name,
        layer.description,
        sorted(set(layer.install)),
        sorted(set(layer.remove)),
        sorted(set(layer.replace)),
        sorted({(s.remove, s.install) for s in layer.swap}),
        list(layer.run),
        [astuple(s) for s in layer.scripts],
        list(layer.env),
        [astuple(repo) for repo in layer.repos],
        layer.replace_from,
    ] + (
        ([] if layer.weak_deps else ["no-weak-deps"])  # the defaults keep earlier digests
        + ([["files", [astuple(f) for f in layer.files]]] if layer.files else [])
        + ([["steps", [_step_identity(s) for s in layer.steps]]] if layer.steps else [])
        + (
            [["local-rpms", sorted({(r.source, r.path) for r in layer.local_rpms})]]
            if layer.local_rpms
            else []
        )
    )


def _step_identity(step: LayerStep) -> list[Any]:
    return [
        step.kind,
        list(step.command),
        astuple(step.script) if step.script else None,
        [astuple(f) for f in step.files],
        step.initramfs.identity if step.initramfs else None,
        astuple(step.selinux) if step.selinux else None,
    ]
