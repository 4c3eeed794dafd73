"""The order of a recipe's steps: warn when a step reads a path that a later step writes.

A recipe renders in a fixed order: the layers (in each, package changes, files, commands,
scripts, then steps as written), kernel modules and the initramfs, files copied from
stages or images, the files step, SELinux, units. A dracut config shipped with the
top-level files: therefore arrives after dracut ran, and the image boots without it; a
schema after glib-compile-schemas is not compiled. Nothing fails: the image is just wrong.
This rule finds such pairs among the steps whose reads are known (dracut, and programs
that read fixed places or the paths they are given) and the steps that write known paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from posixpath import basename

from nestcustom.errors import Problem, Severity
from nestcustom.recipe.model import Layer, Recipe
from nestcustom.recipe.rules_common import Locate, Rule
from nestcustom.recipe.rules_common import problem as _problem
from nestcustom.recipe.schema import format_path

Where = tuple[str | int, ...]
# What dracut reads (dracut.sh: its configuration, modules, module lists and firmware).
DRACUT_READS = (
    "/usr/lib/dracut",
    "/etc/dracut.conf",
    "/etc/dracut.conf.d",
    "/usr/lib/modules-load.d",
    "/etc/modules-load.d",
    "/usr/lib/modprobe.d",
    "/etc/modprobe.d",
    "/usr/lib/modules",
    "/usr/lib/firmware",
)
# Programs that read fixed places; with `args`, also the absolute paths they are given.
PROGRAM_READS: dict[str, tuple[tuple[str, ...], bool]] = {
    "dracut": (DRACUT_READS, False),
    "depmod": (("/usr/lib/modules",), False),
    "glib-compile-schemas": (("/usr/share/glib-2.0/schemas",), True),
    "fc-cache": (("/usr/share/fonts", "/etc/fonts"), True),
    "update-mime-database": (("/usr/share/mime",), True),
    "gtk-update-icon-cache": (("/usr/share/icons",), True),
    "gtk4-update-icon-cache": (("/usr/share/icons",), True),
    "update-desktop-database": (("/usr/share/applications",), True),
    "update-ca-trust": (("/etc/pki/ca-trust/source", "/usr/share/pki/ca-trust-source"), False),
    "systemd-sysusers": (("/usr/lib/sysusers.d", "/etc/sysusers.d"), True),
    "semodule": ((), True),
    "restorecon": ((), True),
    "chmod": ((), True),
    "chown": ((), True),
    "chcon": ((), True),
}
WHAT_IS_MISSED = {
    "initramfs": "the initramfs will not have it",
    "program": "it will not see it",
}


@dataclass(frozen=True)
class Read:
    at: tuple[int, ...]  # its place in the rendered order
    where: Where
    what: str  # "the initramfs (initramfs:)", "glib-compile-schemas (layers[0].run[1])"
    paths: tuple[str, ...]
    missed: str


@dataclass(frozen=True)
class Write:
    at: tuple[int, ...]
    where: Where
    path: str
    only: str = ""  # the one reader this write can spoil ("": any)
    module: str = ""  # a kernel module of kernel-modules: (its own message and hint)


def _dracut(at: tuple[int, ...], where: Where, what: str) -> Read:
    return Read(at, where, what, DRACUT_READS, WHAT_IS_MISSED["initramfs"])


def _command(at: tuple[int, ...], where: Where, argv: tuple[str, ...]) -> Read | None:
    program = basename(argv[0]) if argv else ""
    known = PROGRAM_READS.get(program)
    if known is None:
        return None
    fixed, with_args = known
    given = tuple(a.rstrip("/") for a in argv[1:] if with_args and a.startswith("/"))
    if not fixed and not given:
        return None
    return Read(at, where, program, fixed + given, WHAT_IS_MISSED["program"])


def _layer_events(i: int, layer: Layer) -> tuple[list[Read], list[Write]]:
    reads: list[Read] = []
    writes = [
        Write((0, i, 0), ("layers", i, "files", k, "dest"), f.dest)
        for k, f in enumerate(layer.files)
    ]
    for k, argv in enumerate(layer.run):
        found = _command((0, i, 1, k), ("layers", i, "run", k), argv)
        reads += [found] if found else []
    for j, step in enumerate(layer.steps):
        at = (0, i, 3 + j)
        where: Where = ("layers", i, "steps", j)
        if step.kind == "initramfs":
            reads.append(_dracut(at, (*where, "initramfs"), "dracut"))
        elif step.kind == "run":
            found = _command(at, (*where, "run"), step.command)
            reads += [found] if found else []
        elif step.kind == "selinux" and step.selinux is not None:
            image = tuple(m.src for m in step.selinux.modules if m.src.startswith("/"))
            if image:
                reads.append(Read(at, (*where, "selinux"), "semodule", image, "it will not see it"))
        writes += [
            Write(at, (*where, "files", k, "dest"), f.dest) for k, f in enumerate(step.files)
        ]
    return reads, writes


def _events(recipe: Recipe) -> tuple[list[Read], list[Write]]:
    """The reads, and (only when there is one) the writes, in rendered order."""
    reads: list[Read] = []
    writes: list[Write] = []
    for i, layer in enumerate(recipe.layers):
        if layer.run or layer.files or layer.steps:
            more_reads, more_writes = _layer_events(i, layer)
            reads += more_reads
            writes += more_writes
    kernel = (1,)
    if recipe.initramfs.regenerate:
        reads.append(_dracut((*kernel, 1), ("initramfs",), "dracut"))
    image = tuple(m.src for m in recipe.selinux.modules if m.src.startswith("/"))
    if image:
        reads.append(Read((4,), ("selinux", "modules"), "semodule", image, "it will not see it"))
    if not reads:  # most recipes: nothing reads a known place, no write can spoil it
        return reads, writes
    # The kernel step runs its own depmod: only an initramfs made before it misses a module.
    # One write a module, whatever of it (file, load, options) the initramfs misses.
    for k, module in enumerate(recipe.kernel_modules):
        where = ("kernel-modules", k)
        writes.append(Write((*kernel, 0), where, "/usr/lib/modules", "dracut", module.name))
    for k, spec in enumerate(recipe.files):  # COPY --from ones come before the files step
        order = (2,) if spec.source is not None or spec.copied_alone else (3,)
        writes.append(Write(order, ("files", k, "dest"), spec.dest))
    files_step: list[tuple[Where, str]] = [
        *((("systemd", "dropins", k), d.dest) for k, d in enumerate(recipe.dropins)),
        *((("symlinks", k, "path"), s.path) for k, s in enumerate(recipe.symlinks)),
        *((("directories", k, "path"), d.path) for k, d in enumerate(recipe.directories)),
        *((("downloads", k, "dest"), x.dest) for k, x in enumerate(recipe.downloads)),
        *((("edits", k, "file"), e.file) for k, e in enumerate(recipe.edits)),
    ]
    writes += [Write((3,), where, path) for where, path in files_step]
    return reads, writes


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def read_before_write(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """A write after a read of the same place: warned at the write, naming the read."""
    reads, writes = _events(recipe)
    if not reads or not writes:
        return
    for write in writes:
        for read in reads:
            if read.at >= write.at or (write.only and write.only != read.what):
                continue
            prefix = next((p for p in read.paths if _within(write.path, p)), None)
            if prefix is None:
                continue
            line = locate(*read.where).line
            if write.module:
                message = (
                    f"kernel module {write.module!r} is installed after {read.what} ran "
                    f"({_path(read.where)}, line {line}): kernel-modules: come after every "
                    f"layer, so {read.missed}"
                )
                hint = (
                    "regenerate the initramfs after them instead: initramfs: {regenerate: "
                    "true, drivers: [...]} at the top level runs after kernel-modules:"
                )
            else:
                message = (
                    f"{write.path} is written after {read.what} ran ({_path(read.where)}, line "
                    f"{line}), which reads {prefix}: {read.missed}"
                )
                hint = _hint(read)
            yield _problem(
                locate, write.where, "read-before-write", message, hint, Severity.WARNING
            )
            break  # one warning per write


def _path(where: Where) -> str:
    return format_path(where)


def _hint(read: Read) -> str:
    if read.where and read.where[0] == "layers":
        return (
            f"install it before: in {format_path(read.where[:2])}'s files:, or in a files step "
            "before that point of its steps:"
        )
    return (
        "install it in a layer, before an initramfs step there: "
        "layers: [{name: ..., steps: [{files: [...]}, {initramfs: {...}}]}]"
    )


RULES: tuple[Rule, ...] = (read_before_write,)
