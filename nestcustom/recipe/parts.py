"""Frozen parts of a recipe other than its layers and stages: files and what the files step
makes, users, signing, SELinux, units, kernel arguments, the build's checks and the tests.
`model` re-exports them: import them from there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KernelArguments:
    """Kernel arguments the hosts boot with (bootc kargs.d for append; deploy applies all)."""

    append: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()  # KEY=VALUE
    match_architectures: tuple[str, ...] = ()  # empty: every architecture
    # The recipe has kernel-arguments: (its lists may be empty). Its image then carries the
    # label, which tells deploy that this image appends exactly `append`, even nothing: the
    # arguments an earlier image appended go, as bootc does with kargs.d.
    written: bool = False

    @property
    def is_set(self) -> bool:
        return bool(self.written or self.append or self.delete or self.replace)

    @property
    def lists(self) -> tuple[tuple[str, ...], ...]:
        """What the image gets from them (for the recipe's digest)."""
        return (self.append, self.delete, self.replace, self.match_architectures)

    def applies_to(self, arch: str) -> bool:
        return not self.match_architectures or arch in self.match_architectures


@dataclass(frozen=True)
class UserUnits:
    """User units one user's manager starts (ConditionUser=), optionally at boot (linger)."""

    user: str
    enable: tuple[str, ...]
    linger: bool = False


@dataclass(frozen=True)
class BuildChecks:
    """What the build's last step checks; a failure there means no image and no tag."""

    host_rules: bool = True
    packages: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()


# podman and buildah bind-mount these over the image's own in every RUN step and every
# container: what a RUN writes there never reaches the image, and a container shows
# podman's copy. A recipe's file for one of them is COPYed, and checked through a view of
# the image itself (image/checks.py).
RUN_MOUNTED_FILES = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})


@dataclass(frozen=True)
class FileSpec:
    src: str  # POSIX path relative to the project root (the build context), or in `source`
    dest: str
    mode: str
    sha256: str  # of the content, so the recipe digest changes with the file ("" with source)
    source: str | None = None  # a stage or image to copy from (COPY --from)
    owner: str | None = None  # USER:GROUP or UID:GID; None: root
    tree: bool = False  # src is a directory: its whole tree is copied, modes as they are

    @property
    def copied_alone(self) -> bool:
        """A project file that gets a COPY of its own instead of the files step's RUN."""
        return self.source is None and not self.tree and self.dest in RUN_MOUNTED_FILES


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str
    dest: str
    mode: str = "0644"
    extract: bool = False
    secret: str | None = None  # the build secret with USER:PASSWORD for HTTP basic auth
    decompress: str | None = None  # "gzip": one compressed file, decompressed into dest

    @property
    def identity(self) -> tuple[Any, ...]:
        """What shapes the image; decompress counts only when set (earlier digests stay)."""
        base = (self.url, self.sha256, self.dest, self.mode, self.extract, self.secret)
        return base + ((self.decompress,) if self.decompress else ())


@dataclass(frozen=True)
class Edit:
    """KEY=VALUE lines set in a file of the image, in [section] or outside any."""

    file: str
    section: str | None
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Directory:
    path: str
    mode: str = "0755"


@dataclass(frozen=True)
class User:
    """A system user, for a sysusers.d `u` line."""

    name: str
    uid: int | None = None
    group: str | None = None
    description: str = ""
    home: str | None = None
    shell: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    gid: int | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class SigningScope:
    scope: str  # registry[/namespace...]
    key: FileSpec  # the public key, installed under /etc/pki/containers/
    type: str = "gpg"  # "gpg" (simple signing, signedBy) or "sigstore" (sigstoreSigned)
    lookaside: str | None = None  # gpg: the web server hosts read signatures from
    key_kind: str = ""  # what the key file holds (keyformat.key_kind), for the lint


@dataclass(frozen=True)
class Signing:
    scopes: tuple[SigningScope, ...] = ()
    reject_others: bool = False


@dataclass(frozen=True)
class SelinuxModule:
    """A policy module file of the project, for semodule -i."""

    src: str  # POSIX path relative to the project root
    sha256: str
    name: str  # what semodule calls it: a .cil file's name, a .pp's compiled-in name ("": unread)
    index: int = 0  # its place in selinux.modules, to locate problems


@dataclass(frozen=True)
class Selinux:
    """Booleans (setsebool -P -N) and modules (semodule -N -i) set in the policy store."""

    booleans: tuple[tuple[str, bool], ...] = ()
    modules: tuple[SelinuxModule, ...] = ()
    priority: int = 400  # semodule -X

    @property
    def is_set(self) -> bool:
        return bool(self.booleans or self.modules)


@dataclass(frozen=True)
class Units:
    """systemd beyond enable/disable: every name with its suffix (.service added)."""

    mask: tuple[str, ...] = ()
    unmask: tuple[str, ...] = ()
    default_target: str | None = None
    user_enable: tuple[str, ...] = ()
    user_disable: tuple[str, ...] = ()
    preset: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileCheck:
    path: str
    exists: bool = True
    mode: str | None = None
    contains: str | None = None


@dataclass(frozen=True)
class CommandCheck:
    run: tuple[str, ...]
    exit: int = 0
    stdout: str | None = None
    timeout: float = 60.0  # seconds


@dataclass(frozen=True)
class Tests:
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    files: tuple[FileCheck, ...] = ()
    commands: tuple[CommandCheck, ...] = ()
    units_enabled: tuple[str, ...] = ()
    units_disabled: tuple[str, ...] = ()


@dataclass(frozen=True)
class Updates:
    """Host-side updates: follow a ring tag by digest, reboot under a FleetLock slot."""

    ring: str
    fleetlock: str  # the FleetLock server's base URL
    group: str = "default"
    schedule: str = "daily"  # systemd OnCalendar=
    window: int = 3600  # seconds: RandomizedDelaySec=
    retry: int = 300  # seconds between pre-reboot asks while every slot is held (Zincati's)
    health_timeout: int = 600  # seconds is-system-running --wait may take after the boot
    image: str | None = None  # the repository followed; None: the one the host booted from


@dataclass(frozen=True)
class Rechunk:
    """The built image's custom part re-cut into content-addressed layers (image/rechunk)."""

    max_layers: int = 24  # layers of the custom part, the base's not counted
