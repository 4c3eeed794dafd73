"""NestOS rules for what a build runs: commands, scripts, stages, values, kernel modules.

A host drops, refuses or fails to boot what these would make: a script for an
interpreter NestOS lacks, a value nobody can fill in, a module with nothing to
install it from, an initramfs the base does not need or a NewStart container
cannot boot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from posixpath import basename

from nestcustom.errors import Problem, Severity
from nestcustom.recipe import values
from nestcustom.recipe.model import (
    KERNEL_REPLACE_INITRAMFS_SINCE,
    FileSpec,
    Flavor,
    Initramfs,
    Layer,
    Recipe,
    Repo,
    Script,
    Units,
)
from nestcustom.recipe.rules_common import Locate, Rule
from nestcustom.recipe.rules_common import problem as _problem

# NestOS images have no python3 or perl (contract section 0): scripts need sh or bash.
_MISSING_ON_NESTOS = re.compile(r"(^|/)(python[0-9.]*|perl|ruby|node|php)$")
_KERNEL_RPM = re.compile(r"(^|/)kernel(-rt)?(-core|-modules[a-z-]*)?-\d[^/]*\.rpm$")
RESERVED_STAGE = "nestcustom"
Path_ = tuple[str | int, ...]


def _texts(recipe: Recipe) -> Iterator[tuple[Path_, str, bool]]:
    """Every recipe string that may name a value: (path, text, may it wait for the build).

    Packages are most of a recipe's strings and almost none names a value: a layer's
    lists yield only the strings that hold `{{`, without which no value is named.
    """
    for key, layers in (("layers", recipe.layers),):
        yield from _layer_texts((key,), layers)
    for i, stage in enumerate(recipe.stages):
        yield from _layer_texts(("stages", i, "layers"), stage.layers)
    for i, spec in enumerate(recipe.files):
        yield ("files", i, "dest"), spec.dest, False
    for i, stage in enumerate(recipe.stages):
        for j, spec in enumerate(stage.files):
            yield ("stages", i, "files", j, "dest"), spec.dest, False
    for i, module in enumerate(recipe.kernel_modules):
        if module.options:
            yield ("kernel-modules", i, "options"), module.options, True
    for i, command in enumerate(recipe.checks.commands):
        for j, arg in enumerate(command):
            yield ("checks", "commands", i, j), arg, True
    for i, test in enumerate(recipe.tests.commands):  # read from the image by `nestcustom test`
        for j, arg in enumerate(test.run):
            yield ("tests", "commands", i, "run", j), arg, True
    repos: list[tuple[Path_, Repo]] = [(("repos", i), r) for i, r in enumerate(recipe.repos)]
    repos += [
        (("layers", j, "repos", i), repo)
        for j, layer in enumerate(recipe.layers)
        for i, repo in enumerate(layer.repos)
    ]
    for at, repo in repos:
        for key in ("baseurl", "metalink", "mirrorlist", "gpgkey"):
            text = getattr(repo, key)
            if text:
                yield (*at, key), text, False


def _layer_texts(prefix: Path_, layers: tuple[Layer, ...]) -> Iterator[tuple[Path_, str, bool]]:
    for i, layer in enumerate(layers):
        for key, items in (("install", layer.install), ("replace", layer.replace)):
            for j, text in enumerate(items):
                if "{{" in text:
                    yield (*prefix, i, key, j), text, True
        for j, command in enumerate(layer.run):
            for k, arg in enumerate(command):
                yield (*prefix, i, "run", j, k), arg, True
        for j, script in enumerate(layer.scripts):
            for k, arg in enumerate(script.args):
                yield (*prefix, i, "script", j, "args", k), arg, True
        for j, step in enumerate(layer.steps if layer.steps else ()):
            for k, arg in enumerate(step.command):
                yield (*prefix, i, "steps", j, "run", k), arg, True
            for k, arg in enumerate(step.script.args if step.script else ()):
                yield (*prefix, i, "steps", j, "script", "args", k), arg, True
        for name, text in layer.env:
            yield (*prefix, i, "env", name), text, True


def known_values(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    for path, text, may_wait in _texts(recipe):
        if "{{" not in text:  # names no value: nothing below can apply
            continue
        unknown = values.unknown_names(text)
        for name in unknown:
            yield _problem(
                locate,
                path,
                "unknown-value",
                f"{{{{{name}}}}} is not a build-time value",
                f"the values are {_known_values()}",
            )
        # An unknown name is reported once, above: it is no value the build reads.
        if may_wait or unknown or not values.needs_build(values.substitute_known(text, recipe)):
            continue
        if "repos" in path:
            yield _problem(
                locate,
                path,
                "value-in-repo",
                "a repo file is copied as written: it cannot hold a value read in the build",
                "use dnf's own variables, $releasever and $basearch",
            )
        else:
            yield _problem(
                locate,
                path,
                "value-in-path",
                "a destination is fixed when rendering; this value is only known in the build",
                "use values known from the recipe ({{arch}} with arch:, {{recipe.name}}, "
                "{{base.version}}), or install kernel modules with kernel-modules:",
            )


@cache
def _known_values() -> str:
    return ", ".join(f"{{{{{v.name}}}}}" for v in values.VALUES)


def scripts(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is not Flavor.NESTOS:
        return
    for i, layer in enumerate(recipe.layers):
        scripts: list[tuple[tuple[str | int, ...], Script]] = [
            (("layers", i, "script", j), script) for j, script in enumerate(layer.scripts)
        ]
        if layer.steps:
            scripts += [
                (("layers", i, "steps", j, "script"), step.script)
                for j, step in enumerate(layer.steps)
                if step.script is not None
            ]
        for where, script in scripts:
            if _MISSING_ON_NESTOS.search(_program(script.interpreter)):
                yield _problem(
                    locate,
                    where,
                    "interpreter-missing",
                    f"{script.path} runs with {' '.join(script.interpreter)}, "
                    "which NestOS images do not have",
                    "write it for sh or bash, or run it in a builder stage (stages:)",
                )


def _program(interpreter: tuple[str, ...]) -> str:
    """The program a #! line starts: env's first operand, past its options (-S splits the
    rest into words, -u NAME unsets, NAME=VALUE sets); else the interpreter itself."""
    if basename(interpreter[0]) != "env" or len(interpreter) < 2:
        return interpreter[0]
    words = iter(interpreter[1].split())
    for word in words:
        if word in ("-u", "--unset", "-C", "--chdir"):
            next(words, None)  # the option's own argument
        elif not word.startswith("-") and "=" not in word:
            return word
    return ""


def stages(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    names = {stage.name for stage in recipe.stages}
    for i, stage in enumerate(recipe.stages):
        if stage.name.startswith(RESERVED_STAGE):
            yield _problem(
                locate,
                ("stages", i, "name"),
                "reserved-stage",
                f"stage names starting with {RESERVED_STAGE!r} are nestcustom's own",
            )
        for j, layer in enumerate(stage.layers):
            if layer.is_empty:
                yield _problem(
                    locate,
                    ("stages", i, "layers", j),
                    "empty-layer",
                    f"layer {layer.name!r} of stage {stage.name!r} changes nothing",
                    "give it install, run or script, or delete it",
                )
    # The image's files may come from any stage; a stage's own only from one built before
    # it (a later name would be taken for an image to pull).
    sources: list[tuple[Path_, tuple[FileSpec, ...], list[str]]] = [
        (("files",), recipe.files, sorted(names))
    ]
    for i, stage in enumerate(recipe.stages):
        earlier = sorted(s.name for s in recipe.stages[:i])
        sources.append((("stages", i, "files"), stage.files, earlier))
    for where, specs, known in sources:
        for j, spec in enumerate(specs):
            if spec.source is None:
                continue
            if "/" not in spec.source and spec.source not in known:
                yield _problem(
                    locate,
                    (*where, j, "from"),
                    "unknown-stage",
                    f"no stage before this one is named {spec.source!r}"
                    if where[0] == "stages"
                    else f"no stage is named {spec.source!r}",
                    f"stages: {', '.join(known) or 'none'}; an image needs its registry/name",
                )
            if not spec.src.startswith("/"):
                yield _problem(
                    locate,
                    (*where, j, "src"),
                    "stage-path",
                    "with from:, src is an absolute path in that stage or image",
                )
    for i, module in enumerate(recipe.kernel_modules):
        if module.stage is not None and module.stage not in names:
            yield _problem(
                locate,
                ("kernel-modules", i, "from"),
                "unknown-stage",
                f"no stage is named {module.stage!r}",
            )
        if module.stage is not None and not (module.src or "").startswith("/"):
            yield _problem(
                locate,
                ("kernel-modules", i, "src"),
                "stage-path",
                "with from:, src is the module's absolute path in that stage",
            )


def kernel(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is Flavor.NEWSTART:
        for key, present in (
            ("kernel-modules", recipe.kernel_modules),
            ("initramfs", recipe.initramfs != Initramfs()),
        ):
            if present:
                yield _problem(
                    locate,
                    (key,),
                    "not-bootable",
                    f"a NewStart image is a plain container: {key} would never be used",
                    "kernel modules and the initramfs belong in a NestOS (bootable) image",
                )
        return
    for i, module in enumerate(recipe.kernel_modules):
        if module.src is None and not module.load and not module.options:
            yield _problem(
                locate,
                ("kernel-modules", i),
                "module-does-nothing",
                f"kernel module {module.name!r} has no src:, load: false and no options",
                "give src: (a file or from: a stage) to install it, or load: true",
            )
    initramfs = recipe.initramfs
    for key, items in (
        ("drivers", initramfs.drivers),
        ("add", initramfs.add),
        ("omit", initramfs.omit),
        ("omit-drivers", initramfs.omit_drivers),
        ("install", initramfs.install),
    ):
        if items and not initramfs.regenerate:
            what = "drivers are only added" if key == "drivers" else f"{key}: is only used"
            yield _problem(
                locate,
                ("initramfs", key),
                "initramfs-off",
                f"{what} when the initramfs is regenerated",
                "set initramfs: {regenerate: true}",
            )
    replaces_kernel = any(
        _KERNEL_RPM.search(url) for layer in recipe.layers for url in layer.replace
    )
    if (
        recipe.initramfs.regenerate
        and replaces_kernel
        and recipe.base.rpm_ostree >= KERNEL_REPLACE_INITRAMFS_SINCE
    ):
        yield _problem(
            locate,
            ("initramfs", "regenerate"),
            "initramfs-twice",
            f"rpm-ostree {recipe.base.rpm_ostree} already regenerates the initramfs "
            "when the kernel is replaced",
            "drop initramfs: regenerate unless you add drivers",
            Severity.WARNING,
        )


def does_something(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if not (
        recipe.layers
        or recipe.files
        or recipe.units_enable
        or recipe.units_disable
        or recipe.kernel_modules
        or recipe.initramfs.regenerate
        or recipe.has_early_step
        or recipe.has_files_step
        or recipe.units != Units()
        or recipe.selinux.is_set
        or recipe.kernel_arguments.is_set
        or recipe.user_units
    ):
        # At `layers:` when it is written (`layers: []`), else at the top of the recipe.
        where = ("layers",) if locate("layers") != locate() else ()
        yield _problem(
            locate,
            where,
            "nothing-to-do",
            "the recipe changes nothing in its base",
            f"give it at least one of {', '.join(k + ':' for k in IMAGE_CHANGING_KEYS)}",
        )


# Every top-level key that changes an image (what does_something looks for).
IMAGE_CHANGING_KEYS = (
    "layers",
    "files",
    "symlinks",
    "directories",
    "remove-files",
    "downloads",
    "edits",
    "systemd",
    "users",
    "groups",
    "kernel-modules",
    "initramfs",
    "kernel-arguments",
    "selinux",
    "signing",
    "keys",
    "repo-files",
    "base-repos",
)


RULES: tuple[Rule, ...] = (known_values, scripts, stages, kernel, does_something)
