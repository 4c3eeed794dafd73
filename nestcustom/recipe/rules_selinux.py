"""NestOS rules for SELinux booleans and policy modules (the `selinux:` section).

The build writes them into the image's policy store with setsebool and semodule
(policycoreutils): on a NestOS image the store is /etc/selinux/TYPE, where
rpm-ostree's compose moved it (store-root=/etc/selinux in semanage.conf), so the
host gets it with /etc. What is checked here: each module is a file semodule can
read under a name it accepts, no two modules share a name, and no layer removes
the tools or the policy the step needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase

from nestcustom.errors import Problem
from nestcustom.recipe.model import Recipe
from nestcustom.recipe.rules_common import Locate, problem
from nestcustom.recipe.selinuxmodules import VALID_NAME

# A project file bind-mounted into a RUN: `--mount=...,source=PATH` ends at a blank and
# splits at a comma (as for scripts, rules_files).
_MOUNTABLE = re.compile(r"^[A-Za-z0-9._+@=:%~/-]+$")
# What the step runs (setsebool, semodule) and what it writes into.
_NEEDED = ("policycoreutils", "libsemanage", "selinux-policy", "selinux-policy-targeted")


def modules(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for module in recipe.selinux.modules:
        path = ("selinux", "modules", module.index)
        if module.src.startswith("/"):  # in the image: read in the build, named by its file
            continue
        if not _MOUNTABLE.match(module.src):
            yield problem(
                locate,
                path,
                "unsafe-source-path",
                f"{module.src!r} cannot be passed into the build: blanks, commas and quotes "
                "would split the RUN's --mount option",
                "rename it using letters, digits and . _ + @ = : % ~ / -",
            )
        if not module.name:
            yield problem(
                locate,
                path,
                "selinux-module",
                f"{module.src!r} is not a policy package semodule can read",
                "compile it: checkmodule -M -m -o NAME.mod NAME.te && "
                "semodule_package -o NAME.pp -m NAME.mod; or write the module in CIL (NAME.cil)",
            )
            continue
        if not VALID_NAME.match(module.name):
            yield problem(
                locate,
                path,
                "selinux-module",
                f"semodule refuses the module name {module.name!r}",
                "a module name starts with a letter and holds letters, digits, _ and -, "
                "with single dots between; for a .cil module, rename the file",
            )
        if module.name in seen:
            yield problem(
                locate,
                path,
                "selinux-module",
                f"module {module.name!r} is also installed from {seen[module.name]}",
                "semodule keeps one module per name and priority: keep one of the files",
            )
        seen.setdefault(module.name, module.src)


def tools_kept(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """A layer must not remove what the SELinux step runs or writes into."""
    if not recipe.selinux.is_set:
        return
    for index, layer in enumerate(recipe.layers):
        removed = [("remove", name) for name in layer.remove]
        removed += [("swap", name) for swap in layer.swap for name in swap.remove]
        for key, pattern in removed:
            hit = [name for name in _NEEDED if fnmatchcase(name, pattern)]
            if hit:
                yield problem(
                    locate,
                    ("layers", index, key),
                    "selinux-tools-removed",
                    f"layer {layer.name!r} removes {hit[0]}, which selinux: needs "
                    "(setsebool and semodule write into the image's policy)",
                    "keep policycoreutils and the policy in the image, or drop selinux:",
                )


RULES = (modules, tools_kept)
