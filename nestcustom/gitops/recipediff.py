"""Two recipes compared by what they would do to the base's packages, before any build.

A recipe's net effect per package name: installed (by name, constraint or RPM
URL, also through replace: and swap:) or removed from the base. The diff says
which packages one recipe adds or takes out that the other does not, and
which requested versions moved; versions compare as rpm compares them when
both sides state one (`= 2.0-1`, or an RPM file's name), else the change is
shown as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nestcustom.gitops.pkgdiff import Change, PackageDiff
from nestcustom.image.rpmversion import compare_evr, rpm_file_nvr
from nestcustom.recipe.model import Recipe

FROM_BASE = "(from the base)"
ANY = "(any version)"  # a package named without a version
_MISSING = "\0missing"  # not named by the recipe at all
_CONSTRAINT = re.compile(r"^(?P<name>[^\s<>=]+)\s*(?P<op>[<>=]+)?\s*(?P<evr>\S+)?$")


@dataclass(frozen=True)
class RecipeDiff:
    base: tuple[str, str] | None  # (old, new) base references when they differ
    packages: PackageDiff


def requested(recipe: Recipe) -> dict[str, str | None]:
    """name -> what the recipe asks for it (a spec; None: removed from the base)."""
    wants: dict[str, str | None] = {}
    for layer in recipe.layers:
        for name in layer.remove:
            wants[name] = None
        for swap in layer.swap:
            for name in swap.remove:
                wants[name] = None
            for spec in swap.install:
                wants[_name(spec)] = spec
        for item in (*layer.replace, *layer.install):
            wants[_name(item)] = item
    return wants


def _name(item: str) -> str:
    nvr = rpm_file_nvr(item) if item.endswith(".rpm") else None
    if nvr:
        return nvr[0]
    match = _CONSTRAINT.match(item.strip())
    return match.group("name") if match else item


def _version(item: str) -> str | None:
    """The exact version a spec pins, if it pins one."""
    nvr = rpm_file_nvr(item) if item.endswith(".rpm") else None
    if nvr:
        return f"{nvr[1]}-{nvr[2]}"
    match = _CONSTRAINT.match(item.strip())
    if match and match.group("op") == "=" and match.group("evr"):
        return match.group("evr")
    return None


def diff_recipes(old: Recipe, new: Recipe) -> RecipeDiff:
    before, after = requested(old), requested(new)
    changes = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name, _MISSING), after.get(name, _MISSING)
        if a != b:
            changes.append(_change(name, _shown(name, a), _shown(name, b)))
    base = None
    if old.base.reference != new.base.reference:
        base = (old.base.reference, new.base.reference)
    return RecipeDiff(base, PackageDiff(tuple(changes)))


def _shown(name: str, spec: str | None) -> str | None:
    """A spec as a diff shows it: a bare name says nothing about the version."""
    return ANY if spec == name else spec


def _change(name: str, old: str | None, new: str | None) -> Change:
    """old/new: a spec, None (removed from the base) or _MISSING (not named)."""
    if old is _MISSING:  # newly named: installed, or taken out of the base
        return Change(name, "", None, new) if new is not None else Change(name, "", FROM_BASE, None)
    if new is _MISSING:  # no longer named: back to what the base has
        return Change(name, "", old, None) if old is not None else Change(name, "", None, FROM_BASE)
    if old is None or new is None:
        return Change(name, "", old, new)
    a, b = _version(old), _version(new)
    if a and b and compare_evr(a, b) != 0:
        return Change(name, "", a, b, stated="upgraded" if compare_evr(b, a) > 0 else "downgraded")
    return Change(name, "", old, new, stated="changed")
