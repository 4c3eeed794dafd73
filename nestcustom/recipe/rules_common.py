"""What every NestOS rule shares: how a rule is written and how it locates a problem.

A rule is a small function `rule(recipe, locate)` that yields located
Problems; `locate(*path)` maps a path in the merged recipe to where it was
written. The facts behind the rules are in docs/contracts/nestos-rpm-ostree.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from nestcustom.errors import Location, Problem, Severity
from nestcustom.recipe.model import Recipe
from nestcustom.recipe.schema import format_path

Locate = Callable[..., Location]
Rule = Callable[[Recipe, Locate], Iterator[Problem]]

_NAME = re.compile(r"[^\s<>=]*")
_KEPT_ROOTS = ("/etc/", "/usr/")
# /usr/local is a symlink into /var on NestOS, so content there is dropped too.
_DROPPED_UNDER_USR = "/usr/local/"


def reaches_host(path: str) -> bool:
    """A NestOS host takes `path` from an image: /usr, /etc or anything below them, except
    /usr/local (contract section 1: a host keeps only /usr and /etc of a derived image)."""
    path = path.rstrip("/") or "/"
    if path in ("/usr", "/etc"):
        return True
    return path.startswith(_KEPT_ROOTS) and not (path + "/").startswith(_DROPPED_UNDER_USR)


def package_name(spec: str) -> str:
    """`strace >= 5.10` -> `strace`."""
    match = _NAME.match(spec.strip())
    return match.group() if match else ""


def is_rpm_url(spec: str) -> bool:
    return spec.endswith(".rpm") and "://" in spec


def problem(
    locate: Locate,
    path: tuple[str | int, ...],
    code: str,
    message: str,
    hint: str | None = None,
    severity: Severity = Severity.ERROR,
) -> Problem:
    return Problem(locate(*path), format_path(path), message, hint, severity, code)
