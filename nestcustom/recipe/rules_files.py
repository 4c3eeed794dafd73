"""NestOS rules for files, links, directories, removals, users, units and the layer count.

The layer count is of every instruction that makes a filesystem layer (RUN,
COPY), not of `layers:` alone: a NestOS base is a chunked image of up to about
64 layers and overlay stacks at most 128, so a derived image has room for
about 60 (a recipe with 130 single-file COPYs failed with `max depth exceeded`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from nestcustom.errors import Problem, Severity
from nestcustom.recipe import values
from nestcustom.recipe.model import RUN_MOUNTED_FILES, FileSpec, Flavor, Recipe
from nestcustom.recipe.optpaths import LIB_OPT
from nestcustom.recipe.rules_common import Locate, reaches_host
from nestcustom.recipe.rules_common import problem as _problem
from nestcustom.recipe.rules_language import is_nix

MAX_LAYERS = 60
# A project file bind-mounted into a RUN: its path goes into `--mount=...,source=PATH`,
# which ends at a blank and splits at a comma, so only these characters are safe.
_MOUNTABLE = re.compile(r"^[A-Za-z0-9._+@=:%~/-]+$")
# Removing one of these would take the system's own trees with it.
_PROTECTED = {"/etc", "/usr", "/usr/bin", "/usr/lib", "/usr/lib64", "/usr/sbin", "/usr/share"}


def layer_count(recipe: Recipe) -> int:
    """Filesystem layers the recipe adds to its base (the final image's RUN and COPY),
    in the order render writes them."""
    count = len(recipe.layers)
    count += len(recipe.local_rpm_layers)  # each COPYs the list of its RPM files first
    count += 1 if recipe.repos else 0
    count += 1 if recipe.has_early_step else 0
    modules = recipe.kernel_modules
    count += sum(1 for m in modules if m.stage is not None and m.src is not None)
    count += 1 if modules or recipe.initramfs.regenerate else 0
    count += sum(1 for spec in recipe.files if spec.source is not None or spec.copied_alone)
    count += 1 if recipe.has_files_step else 0
    units = recipe.units
    count += (
        1
        if recipe.units_enable
        or recipe.units_disable
        or units.mask
        or units.unmask
        or units.default_target
        or units.user_enable
        or units.user_disable
        or units.preset
        else 0
    )
    count += 1 if recipe.selinux.is_set else 0
    checks = recipe.checks
    host_rules = checks.host_rules and recipe.base.flavor is Flavor.NESTOS
    count += 1 if host_rules or checks.packages or checks.files or checks.commands else 0
    return count


def layer_budget(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    count = layer_count(recipe)
    if count > MAX_LAYERS:
        yield _problem(
            locate,
            ("layers", MAX_LAYERS) if len(recipe.layers) > MAX_LAYERS else (),
            "too-many-layers",
            f"the image gets {count} layers on top of its base; at most {MAX_LAYERS} fit",
            "merge related layers; every file, link and directory already shares one step, "
            "but each files[] entry with from: is a COPY of its own",
        )


def paths_reach_host(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is not Flavor.NESTOS:
        return
    kept = "a NestOS host keeps only /usr and /etc from an image"
    hint = "use a path under /usr or /etc; create /var content at boot with tmpfiles.d"
    for key, field, paths in (
        ("symlinks", "path", [link.path for link in recipe.symlinks]),
        ("directories", "path", [d.path for d in recipe.directories]),
        ("downloads", "dest", [x.dest for x in recipe.downloads]),
        ("edits", "file", [e.file for e in recipe.edits]),
    ):
        for i, path in enumerate(paths):
            where = (key, i, field)
            if path.rstrip("/") in _PROTECTED or is_nix(path):
                continue  # a system tree itself, or /nix: other rules judge it
            if not reaches_host(path):
                yield _problem(
                    locate, where, "dropped-path", f"{path} would be dropped: {kept}", hint
                )
    for i, path in enumerate(recipe.removals):
        if path.rstrip("/") in _PROTECTED or not path.strip("/"):
            yield _problem(
                locate,
                ("remove-files", i),
                "remove-system-tree",
                f"removing {path} would take the system's own files with it",
                "name the files or directories to remove",
            )
        elif not reaches_host(path):
            # Nothing is dropped here: the image's copy goes, but a host never takes that
            # tree from an image, and its own copy stays as it is.
            top = "/" + path.strip("/").split("/")[0]
            yield _problem(
                locate,
                ("remove-files", i),
                "remove-outside-image",
                f"removing {path} from the image changes nothing on a host: a NestOS host "
                f"takes only /usr and /etc from an image and keeps its own {top} as it is",
                "to remove it on hosts, ship a tmpfiles.d fragment (an `r` or `R` line) "
                "under /usr/lib/tmpfiles.d; otherwise drop this entry",
            )


def unique_paths(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """A path made twice in the files step: the later would silently win."""
    seen: dict[str, str] = {spec.dest: "files" for spec in recipe.files}
    for key, paths in (
        ("symlinks", [link.path for link in recipe.symlinks]),
        ("directories", [d.path for d in recipe.directories]),
    ):
        for i, path in enumerate(paths):
            if path in seen:
                yield _problem(
                    locate,
                    (key, i, "path"),
                    "duplicate",
                    f"{path} is also made by {seen[path]}:",
                    "keep one of them",
                )
            seen[path] = key


def users(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    for i, user in enumerate(recipe.users):
        if user.group and user.uid is None:
            yield _problem(
                locate,
                ("users", i, "group"),
                "group-without-uid",
                f"user {user.name!r} names a primary group but no uid:",
                "sysusers.d takes a primary group as UID:GROUP: give the user a uid",
            )
    if (recipe.users or recipe.groups) and recipe.base.flavor is not Flavor.NESTOS:
        yield _problem(
            locate,
            ("users",) if recipe.users else ("groups",),
            "sysusers-newstart",
            "users and groups become a sysusers.d fragment, applied when systemd boots",
            "a NewStart container image that does not boot systemd never applies it",
            Severity.WARNING,
        )


def more_units(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    masked = set(recipe.units.mask)
    for j, unit in enumerate(recipe.units_enable):
        if unit in masked:
            yield _problem(
                locate,
                ("systemd", "enable", j),
                "unit-both",
                f"{unit} is both enabled and masked",
                "a masked unit never starts: keep one of them",
            )
    unmasked = set(recipe.units.unmask)
    for j, unit in enumerate(recipe.units.mask):
        if unit in unmasked:
            yield _problem(
                locate, ("systemd", "mask", j), "unit-both", f"{unit} is both masked and unmasked"
            )
    target = recipe.units.default_target
    if target and not target.endswith(".target"):
        yield _problem(
            locate,
            ("systemd", "default-target"),
            "not-a-target",
            f"{target} is not a target",
            "name a .target unit, e.g. multi-user.target",
        )


def mountable_paths(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    named: list[tuple[tuple[str | int, ...], str]] = [
        (("files", i, "src"), spec.src) for i, spec in enumerate(recipe.files) if not spec.source
    ]
    named += [(("systemd", "dropins", i, "src"), s.src) for i, s in enumerate(recipe.dropins)]
    named += [(("keys", i), s.src) for i, s in enumerate(recipe.keys)]
    named += [
        (("signing", "scopes", i, "key"), s.key.src) for i, s in enumerate(recipe.signing.scopes)
    ]
    named += [
        (("kernel-modules", i, "src"), m.src)
        for i, m in enumerate(recipe.kernel_modules)
        if m.src is not None and m.stage is None
    ]
    for key, layers in (("layers", recipe.layers),):
        for i, layer in enumerate(layers):
            named += [((key, i, "script", j), s.path) for j, s in enumerate(layer.scripts)]
            if not (layer.files or layer.steps):
                continue
            named += [((key, i, "files", j, "src"), f.src) for j, f in enumerate(layer.files)]
            for j, step in enumerate(layer.steps):
                if step.script is not None:
                    named.append(((key, i, "steps", j, "script"), step.script.path))
                named += [
                    ((key, i, "steps", j, "files", k, "src"), f.src)
                    for k, f in enumerate(step.files)
                ]
    for k, stage in enumerate(recipe.stages):
        for i, layer in enumerate(stage.layers):
            named += [
                (("stages", k, "layers", i, "script", j), s.path)
                for j, s in enumerate(layer.scripts)
            ]
    for path, source in named:
        if not _MOUNTABLE.match(source):
            yield _problem(
                locate,
                path,
                "unsafe-source-path",
                f"{source!r} cannot be passed into the build: blanks, commas and quotes "
                "would split the RUN's --mount option",
                "rename it using letters, digits and . _ + @ = : % ~ / -",
            )


def repo_ids(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    seen = {repo.id for repo in recipe.repos}
    for j, layer in enumerate(recipe.layers):
        for i, repo in enumerate(layer.repos):
            if repo.id in seen:
                yield _problem(
                    locate,
                    ("layers", j, "repos", i, "id"),
                    "duplicate",
                    f"repo id {repo.id!r} is already used",
                    "a layer's repo needs an id of its own",
                )
            seen.add(repo.id)
        if layer.repos and not layer.changes_packages:
            yield _problem(
                locate,
                ("layers", j, "repos"),
                "repo-unused",
                f"layer {layer.name!r} has repos but installs nothing from them",
                "add the packages to install:, or drop repos:",
                Severity.WARNING,
            )
    enabled = set(recipe.base_repos_enable)
    for i, repo_id in enumerate(recipe.base_repos_disable):
        if repo_id in enabled:
            yield _problem(
                locate,
                ("base-repos", "disable", i),
                "repo-both",
                f"base repo {repo_id!r} is both enabled and disabled",
            )


def run_mounted(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """Links, edits, downloads and the like of a file podman mounts over in every RUN: the
    step changes podman's copy, and the image keeps its own."""
    for key, field, paths in (
        ("symlinks", "path", [link.path for link in recipe.symlinks]),
        ("directories", "path", [d.path for d in recipe.directories]),
        ("remove-files", None, list(recipe.removals)),
        ("downloads", "dest", [x.dest for x in recipe.downloads]),
        ("edits", "file", [e.file for e in recipe.edits]),
    ):
        for i, path in enumerate(paths):
            if path.rstrip("/") in RUN_MOUNTED_FILES:
                yield _problem(
                    locate,
                    (key, i, field) if field else (key, i),
                    "run-mounted",
                    f"{path} cannot be changed by a build step: podman mounts its own {path} "
                    "over the image's in every RUN, so the change would never reach the image",
                    f"ship the whole file with files: (src: ..., dest: {path}); it is COPYed",
                )
    # A layer's own files are copied by its RUN, so podman's copy would take them too.
    for i, layer in enumerate(recipe.layers):
        placed: list[tuple[tuple[str | int, ...], FileSpec]] = [
            (("layers", i, "files", k, "dest"), f) for k, f in enumerate(layer.files)
        ]
        placed += [
            (("layers", i, "steps", j, "files", k, "dest"), f)
            for j, step in enumerate(layer.steps)
            for k, f in enumerate(step.files)
        ]
        for where, spec in placed:
            if spec.dest in RUN_MOUNTED_FILES:
                yield _problem(
                    locate,
                    where,
                    "run-mounted",
                    f"{spec.dest} cannot be written by a layer: podman mounts its own "
                    f"{spec.dest} over the image's in every RUN, so the file would never "
                    "reach the image",
                    f"ship it with the top-level files: (src: {spec.src}, dest: {spec.dest}); "
                    "it is COPYed",
                )


def _opt_name_trouble(name: str) -> tuple[str, str, str] | None:
    """(code, why, hint) when NAME cannot be a tmpfiles.d line's path, else None."""
    if values.needs_build(name):
        tokens = ", ".join(f"{{{{{n}}}}}" for n in values.TOKEN.findall(name))
        return (
            "value-under-opt",
            f"{tokens} is only known in the build",
            "use values known from the recipe ({{arch}}, {{recipe.name}}, {{base.version}}) "
            "in the name under /opt, or put it under /usr/lib",
        )
    if any(c.isspace() or c in "\"'\\" for c in name):
        return (
            "opt-name",
            "a blank, quote or backslash in its name would split or change that line",
            "name the directory under /opt without blanks, quotes or backslashes",
        )
    return None


def opt_values(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """A NAME under /opt whose tmpfiles.d line (written when rendering,
    optpaths.tmpfiles_lines) would not link it: a value only the build knows (the line
    would keep the token), or a blank or quote (tmpfiles splits fields on blanks).
    Top-level files: are value-in-path's (rules_build.known_values)."""
    trouble = {n: t for n in recipe.opt_links if (t := _opt_name_trouble(n)) is not None}
    if not trouble:
        return
    paths: list[tuple[tuple[str | int, ...], str]] = []
    for i, layer in enumerate(recipe.layers):
        paths += [(("layers", i, "files", j, "dest"), f.dest) for j, f in enumerate(layer.files)]
        for k, step in enumerate(layer.steps):
            step_at = ("layers", i, "steps", k, "files")
            paths += [((*step_at, j, "dest"), f.dest) for j, f in enumerate(step.files)]
    paths += [(("files", i, "dest"), f.dest) for i, f in enumerate(recipe.files)]
    paths += [(("symlinks", i, "path"), s.path) for i, s in enumerate(recipe.symlinks)]
    paths += [(("directories", i, "path"), d.path) for i, d in enumerate(recipe.directories)]
    paths += [(("downloads", i, "dest"), x.dest) for i, x in enumerate(recipe.downloads)]
    for where, path in paths:
        name = path[len(LIB_OPT) :].split("/")[0]
        if not path.startswith(LIB_OPT) or name not in trouble:
            continue
        code, why, hint = trouble[name]
        if code == "value-under-opt" and where[0] == "files":
            continue  # top-level files: value-in-path says it (rules_build.known_values)
        yield _problem(
            locate,
            where,
            code,
            f"/opt/{path[len(LIB_OPT) :]}: a directory under /opt is linked at boot by a line "
            f"written when rendering; {why}",
            hint,
        )


RULES = (
    repo_ids,
    opt_values,
    mountable_paths,
    layer_budget,
    paths_reach_host,
    unique_paths,
    users,
    more_units,
    run_mounted,
)
