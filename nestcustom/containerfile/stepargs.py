"""What the build helper is told for files, the initramfs and SELinux, wherever they run:
in their own step after the layers (files:, initramfs:, selinux:) or inside a layer, at the
point its `files:` and `steps:` put them.

Each function returns the helper's arguments with the bind mounts they need (project files
at paths named by their content, see commands.content_path) and the project files read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from posixpath import basename

from nestcustom.containerfile.commands import HELPER, Command, content_path
from nestcustom.recipe.model import FileSpec, Initramfs, Layer, LayerStep, Script, Selinux

FILES_MOUNT = "/run/nestcustom/files"
SELINUX_MOUNT = "/run/nestcustom/selinux"


def bind(source: str, target: str, stage: str | None = None) -> str:
    origin = f"from={stage}," if stage else ""
    return f"--mount=type=bind,{origin}source={source},target={target}"


@dataclass
class Parts:
    """Commands of a step and what they need, collected in order."""

    commands: list[Command] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, other: Parts) -> None:
        self.commands += other.commands
        self.mounts += other.mounts
        self.sources += other.sources


# (project path, sha256, dest, mode, owner or None, is a tree)
Copy = tuple[str, str, str, str, str | None, bool]


def copies(specs: Iterable[FileSpec]) -> list[Copy]:
    """The project files and trees of `specs` the helper copies (not COPY --from ones)."""
    return [
        (spec.src, spec.sha256, spec.dest, spec.mode, spec.owner, spec.tree)
        for spec in specs
        if spec.source is None and not spec.copied_alone
    ]


def copy_args(items: Iterable[Copy]) -> tuple[list[str], list[str], list[str]]:
    """(mounts, `files` arguments, sources) that copy `items` into place."""
    mounts, args, sources = [], [], []
    for src, sha256, dest, mode, owner, tree in items:
        target = content_path(FILES_MOUNT, sha256, basename(src) or "tree")
        mounts.append(bind(src, target))
        if tree:
            args += ["--tree", target, dest, owner or "-"]
        else:
            args += ["--copy", target, dest, mode, owner or "-"]
        sources.append(src)
    return mounts, args, sources


def files_parts(specs: Iterable[FileSpec]) -> Parts:
    mounts, args, sources = copy_args(copies(specs))
    command = Command(("sh", HELPER, "files"), tuple(args))
    return Parts([command], mounts, sources) if args else Parts()


def initramfs_args(initramfs: Initramfs) -> tuple[str, ...]:
    """`initramfs DRIVER... [--add M] [--omit M] [--omit-drivers D] [--install FILE]`: the
    drivers as they always were, the options after them."""
    args: list[str] = list(initramfs.drivers)
    for option, names in (
        ("--add", initramfs.add),
        ("--omit", initramfs.omit),
        ("--omit-drivers", initramfs.omit_drivers),
        ("--install", initramfs.install),
    ):
        for name in names:
            args += [option, name]
    return tuple(args)


def initramfs_parts(initramfs: Initramfs) -> Parts:
    return Parts([Command(("sh", HELPER, "initramfs"), initramfs_args(initramfs))])


def selinux_parts(selinux: Selinux, nestos: bool) -> Parts:
    """Modules (semodule -N -i), then booleans (setsebool -P -N: a module may define them).
    A project module is bind-mounted by its content under its own name (semodule names a
    .cil module after its file); one an installed package put in the image is named as is."""
    parts = Parts()
    args: list[str] = ["--nestos"] if nestos else []
    if selinux.modules:
        args += ["--priority", str(selinux.priority)]
    for module in selinux.modules:
        if module.src.startswith("/"):
            args += ["--module", module.src]
            continue
        target = content_path(SELINUX_MOUNT, module.sha256, basename(module.src))
        parts.mounts.append(bind(module.src, target))
        parts.sources.append(module.src)
        args += ["--module", target]
    for name, value in sorted(selinux.booleans):
        args += ["--boolean", name, "on" if value else "off"]
    parts.commands.append(Command(("sh", HELPER, "selinux"), tuple(args)))
    return parts


def script_target(index: int, script: Script) -> str:
    """Where a script is mounted: by its content (see content_path), under its own name,
    so its messages (`$0`) say which it is."""
    if not script.sha256:  # a script that was not found: the recipe is already invalid
        return f"/run/nestcustom/scripts/{index}/{basename(script.path)}"
    return content_path("/run/nestcustom/scripts", script.sha256, basename(script.path))


def layer_parts(layer: Layer, nestos: bool) -> Parts:
    """What a layer runs after its package changes: its files, its commands, its scripts,
    then its steps in the order written; each command with the layer's env."""
    env = tuple(f"{name}={value}" for name, value in layer.env)
    prefix = ("env", *env) if env else ()
    parts = files_parts(layer.files)
    parts.commands += [Command((*prefix, argv[0]), tuple(argv[1:])) for argv in layer.run]
    for index, script in enumerate(layer.scripts):
        parts.add(_script(index, script, prefix))
    for number, step in enumerate(layer.steps):
        parts.add(_step(number, step, prefix, nestos))
    return parts


def _script(index: int, script: Script, prefix: tuple[str, ...]) -> Parts:
    target = script_target(index, script)
    command = Command((*prefix, *script.interpreter, target), script.args)
    return Parts([command], [bind(script.path, target)], [script.path])


def _step(number: int, step: LayerStep, prefix: tuple[str, ...], nestos: bool) -> Parts:
    if step.kind == "run":
        return Parts([Command((*prefix, step.command[0]), step.command[1:])])
    if step.script is not None:
        return _script(1000 + number, step.script, prefix)  # apart from the script: list's
    if step.initramfs is not None:
        return initramfs_parts(step.initramfs)
    if step.selinux is not None:
        return selinux_parts(step.selinux, nestos)
    return files_parts(step.files)
