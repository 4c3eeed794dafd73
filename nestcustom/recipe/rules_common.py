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
