"""Commands of RUN steps, and how a RUN line is written.

Every argument passes through `shlex.quote` (via `shlex.join`), so no recipe
string reaches the build's shell as code. Package lists are de-duplicated and
sorted: reordering a list changes no byte.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from nestcustom.recipe.model import Layer

MAX_LINE = 100
HELPER_SCRIPT = "build-helper.sh"  # package data: the build helper's text


def content_path(directory: str, sha256: str, name: str) -> str:
    """`directory/<sha256 prefix>/name`: where a bind-mounted file is mounted in a RUN.

    Content-addressed because podman 4.3 reuses a RUN's layer cache when only the
    content of a file it bind-mounts from the build context changed (the RUN text
    is the cache key): with the digest in the text, a changed script, module or
    helper re-runs its step.
    """
    return f"{directory}/{sha256[:16]}/{name}"


# Where RUN steps find the build helper (a bind mount), addressed by its content.
_HELPER_TEXT = resources.files("nestcustom.containerfile").joinpath(HELPER_SCRIPT).read_bytes()
HELPER = content_path(
    "/run/nestcustom/helper", hashlib.sha256(_HELPER_TEXT).hexdigest(), "build.sh"
)


def helper_text() -> str:
    """The build helper's text (package data, read once at import)."""
    return _HELPER_TEXT.decode("utf-8")


@dataclass(frozen=True)
class Command:
    """One program invocation: the verb (`rpm-ostree install`) and its arguments."""

    verb: tuple[str, ...]
    args: tuple[str, ...] = ()
    # A directory of RPM files (a mounted stage, see steps.RPMS_MOUNT) whose list the build
    # helper adds to the arguments: an install of local files with the named packages.
    rpms: str = ""

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.verb, *self.args)

    def _rpms(self) -> tuple[str, ...]:
        return ("--rpms", self.rpms) if self.rpms else ()

    def through_helper(self) -> Command:
        """The same command, its arguments' {{values}} filled in by the build helper."""
        return Command(("sh", HELPER, "exec", *self._rpms(), *self.verb), self.args)

    def clamped(self) -> Command:
        """The same command run by the build helper, which then gives what it stamped with
        the clock (rpmdb install times, new users' password dates) times from the image:
        NestOS's librpm ignores SOURCE_DATE_EPOCH (contract section 1, "Times"). It also
        moves what packages put under /opt to /usr/lib/opt, as rpm-ostree does."""
        return Command(("sh", HELPER, "clamp", *self._rpms(), *self.verb), self.args)


REMOVE_CACHE = Command(("rm", "-rf", "/var/cache"))
COMMIT = Command(("ostree", "container", "commit"))


def is_glob(name: str) -> bool:
    return any(char in name for char in "*?[")


def sorted_set(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))


def nestos_package_commands(layer: Layer, rpms: str = "") -> list[Command]:
    """The rpm-ostree commands of one NestOS layer, in the manual's form; `rpms`: where the
    layer's RPM files from stages or images are mounted."""
    commands: list[Command] = []
    names = [name for name in layer.remove if not is_glob(name)]
    globs = [name for name in layer.remove if is_glob(name)]
    if names:
        commands.append(Command(("rpm-ostree", "override", "remove"), sorted_set(names)))
    if globs:  # rpm-ostree takes names only: the build helper matches the installed ones
        commands.append(Command(("sh", HELPER, "remove-matching"), sorted_set(globs)))
    if layer.swap:
        # `--install` is honoured from rpm-ostree 2022.17; the version gate refuses older bases.
        removes = sorted_set(name for s in layer.swap for name in s.remove)
        news = sorted_set(spec for s in layer.swap for spec in s.install)
        installs = tuple(a for pkg in news for a in ("--install", pkg))
        commands.append(Command(("rpm-ostree", "override", "remove"), removes + installs))
    if layer.replace:
        commands.append(Command(("rpm-ostree", "override", "replace"), sorted_set(layer.replace)))
    if layer.replace_from:
        repo, packages = layer.replace_from
        verb = ("rpm-ostree", "override", "replace", "--experimental", "--from", f"repo={repo}")
        commands.append(Command(verb, sorted_set(packages)))
    if layer.install or rpms:
        commands.append(Command(("rpm-ostree", "install"), sorted_set(layer.install), rpms))
    return commands


def dnf_package_commands(layer: Layer, rpms: str = "") -> list[Command]:
    """A NewStart layer's package changes: the distribution's dnf."""
    dnf = ("dnf", "-y") if layer.weak_deps else ("dnf", "-y", "--setopt=install_weak_deps=False")
    commands: list[Command] = []
    if layer.remove:
        commands.append(Command(("dnf", "-y", "remove"), sorted_set(layer.remove)))
    for swap in sorted(set(layer.swap), key=lambda s: (s.remove, s.install)):
        if len(swap.remove) == 1 and len(swap.install) == 1:
            commands.append(Command((*dnf, "swap"), (*swap.remove, *swap.install)))
        else:  # dnf swaps one for one; N:M is an install that may replace, then the removal
            commands.append(Command((*dnf, "--allowerasing", "install"), sorted_set(swap.install)))
            commands.append(Command(("dnf", "-y", "remove"), sorted_set(swap.remove)))
    if layer.replace:
        commands.append(Command((*dnf, "--allowerasing", "install"), sorted_set(layer.replace)))
    if layer.replace_from:  # the repo's version, up or down
        repo, packages = layer.replace_from
        verb = (*dnf, f"--repo={repo}", "distro-sync")
        commands.append(Command(verb, sorted_set(packages)))
    if layer.install or rpms:
        commands.append(Command((*dnf, "install"), sorted_set(layer.install), rpms))
    return commands


# How a builder stage's `install:` runs, per package manager, and how it cleans up.
STAGE_INSTALL: dict[str, tuple[tuple[str, ...], tuple[Command, ...]]] = {
    "dnf": (("dnf", "-y", "install"), (Command(("dnf", "clean", "all")),)),
    "yum": (("yum", "-y", "install"), (Command(("yum", "clean", "all")),)),
    "microdnf": (("microdnf", "-y", "install"), (Command(("microdnf", "clean", "all")),)),
    "apt-get": (
        ("apt-get", "install", "-y", "--no-install-recommends"),
        (Command(("apt-get", "clean")),),
    ),
    "rpm-ostree": (("rpm-ostree", "install"), ()),
}


def stage_package_commands(layer: Layer, manager: str) -> list[Command]:
    if not layer.install:
        return []
    verb, cleanup = STAGE_INSTALL[manager]
    update = [Command(("apt-get", "update"))] if manager == "apt-get" else []
    return [*update, Command(verb, sorted_set(layer.install)), *cleanup]


def run_line(commands: Sequence[Command], mounts: Sequence[str] = ()) -> str:
    """`RUN [--mount=...] a && b && c` on one line when it fits, else one argument per line."""
    flags = "".join(f"{m} " for m in mounts)
    single = "RUN " + flags + " && ".join(shlex.join(c.argv) for c in commands)
    if len(single) <= MAX_LINE:
        return single
    parts: list[str] = []
    if mounts:
        parts.append("RUN " + " \\\n    ".join(mounts))
    for index, command in enumerate(commands):
        lead = "RUN " if index == 0 and not mounts else "    " if index == 0 else "    && "
        text = lead + shlex.join(command.argv)
        if len(text) > MAX_LINE:
            text = lead + shlex.join(command.verb)
            text += "".join(f" \\\n        {shlex.quote(arg)}" for arg in command.args)
        parts.append(text)
    return " \\\n".join(parts)
