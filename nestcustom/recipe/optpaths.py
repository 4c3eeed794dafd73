"""/opt on NestOS: paths a recipe puts there go to /usr/lib/opt, linked back at boot.

A NestOS host has /opt as a link to var/opt (rpm-ostree's compose_init_rootfs, 2022.16
rust/src/composepost.rs TOPLEVEL_SYMLINKS), and keeps nothing of /var from an image. For
packages rpm-ostree's importer moves opt/NAME to usr/lib/opt/NAME and writes a tmpfiles.d
line `L /opt/NAME - - - - ../../usr/lib/opt/NAME` (rust/src/utils.rs
translate_path_for_ostree, rust/src/importer.rs tmpfiles_symlink_entries); nestcustom does
the same for the recipe's own files, links, directories and downloads, here, once, so every
later step sees the real path. (Packages get it from the build helper's clamp.)
"""

from __future__ import annotations

from dataclasses import replace

from nestcustom.recipe import values
from nestcustom.recipe.model import Directory, FileSpec, Layer, Recipe, Symlink

OPT = "/opt/"
LIB_OPT = "/usr/lib/opt/"


def _moved(path: str, names: set[str], recipe: Recipe) -> str:
    if not path.startswith(OPT) or path.rstrip("/") == "/opt":
        return path
    # Values known now are filled in first: NAME goes into a tmpfiles.d line written when
    # rendering, which nothing fills in later (rules_files.opt_values refuses the others).
    rest = values.substitute_known(path, recipe)[len(OPT) :]
    names.add(rest.split("/", 1)[0])
    return LIB_OPT + rest


def translate_opt(recipe: Recipe) -> Recipe:
    """`recipe` with /opt/NAME... paths moved to /usr/lib/opt/NAME..., and the NAMEs in
    opt_links; the same recipe when nothing is under /opt (the usual case, at no cost)."""
    if not _mentions_opt(recipe):
        return recipe
    names: set[str] = set()

    def specs(items: tuple[FileSpec, ...]) -> tuple[FileSpec, ...]:
        return tuple(replace(f, dest=_moved(f.dest, names, recipe)) for f in items)

    def layer(item: Layer) -> Layer:
        steps = tuple(replace(s, files=specs(s.files)) if s.files else s for s in item.steps)
        return replace(item, files=specs(item.files), steps=steps)

    return replace(
        recipe,
        files=specs(recipe.files),
        layers=tuple(layer(item) for item in recipe.layers),
        symlinks=tuple(Symlink(_moved(s.path, names, recipe), s.target) for s in recipe.symlinks),
        directories=tuple(
            Directory(_moved(d.path, names, recipe), d.mode) for d in recipe.directories
        ),
        downloads=tuple(replace(x, dest=_moved(x.dest, names, recipe)) for x in recipe.downloads),
        # What the build and `nestcustom test` look for under /opt is where it now is (in an
        # image /opt is a link to an empty var/opt); looking makes no link of its own.
        checks=replace(
            recipe.checks, files=tuple(_moved(p, set(), recipe) for p in recipe.checks.files)
        ),
        tests=replace(
            recipe.tests,
            files=tuple(replace(f, path=_moved(f.path, set(), recipe)) for f in recipe.tests.files),
        ),
        opt_links=tuple(sorted(names)),
    )


def _mentions_opt(recipe: Recipe) -> bool:
    for spec in recipe.files:
        if spec.dest.startswith(OPT):
            return True
    for layer in recipe.layers:
        if (layer.files or layer.steps) and any(f.dest.startswith(OPT) for f in layer.all_files):
            return True
    return any(
        path.startswith(OPT)
        for path in (
            *(s.path for s in recipe.symlinks),
            *(d.path for d in recipe.directories),
            *(x.dest for x in recipe.downloads),
            *recipe.checks.files,
            *(f.path for f in recipe.tests.files),
        )
    )


def tmpfiles_lines(names: tuple[str, ...]) -> list[str]:
    """tmpfiles.d lines that link /opt/NAME to its place under /usr/lib/opt at boot, as
    rpm-ostree writes them (the target relative to /var/opt/NAME, where /opt/NAME is).
    systemd-tmpfiles expands %-specifiers in both fields: a % of the name is written %%."""
    lines = []
    for name in names:
        escaped = name.replace("%", "%%")
        lines.append(f"L /opt/{escaped} - - - - ../../usr/lib/opt/{escaped}")
    return lines
