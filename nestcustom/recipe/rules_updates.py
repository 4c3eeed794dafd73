"""The updates: rules a schema cannot express: the ring is a ring name (the rule `promote
--ring` applies), the schedule reads as a systemd calendar event, the spans are not zero,
and a sigstore signing scope the updater could not prove is named.

The calendar check is syntax only (systemd.time(7) "Calendar Events"): running
`systemd-analyze calendar` at validate time would cost a process per recipe and the
build machine may have no systemd; the tests hold this check against it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from nestcustom.errors import Problem, Severity
from nestcustom.recipe.model import Flavor, Recipe
from nestcustom.recipe.rings import RING_HINT, is_ring_name
from nestcustom.recipe.rules_common import Locate, Rule, problem

SHORTHANDS = frozenset(
    [
        "minutely",
        "hourly",
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "annually",
        "quarterly",
        "semiannually",
    ]
)
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_DAYS = re.compile(rf"{_DAY}(?:\.\.{_DAY})?(?:,{_DAY}(?:\.\.{_DAY})?)*", re.IGNORECASE)
_VALUE = r"(?:\*|[0-9]+(?:\.\.[0-9]+)?)(?:/[0-9]+)?"
_VALUES = rf"{_VALUE}(?:,{_VALUE})*"
_DATE = re.compile(rf"(?:{_VALUES}-)?{_VALUES}[-~]{_VALUES}")
_TIME = re.compile(rf"{_VALUES}:{_VALUES}(?::{_VALUES}(?:\.[0-9]+)?)?")
_ZONE = re.compile(r"UTC|[A-Z][A-Za-z_+-]*(?:/[A-Za-z_+-]+)+")


def is_calendar(text: str) -> bool:
    """Whether `text` has the shape of an OnCalendar= value: a shorthand (daily), or
    [WEEKDAYS] [DATE] [TIME] [ZONE] with at least one of the first three."""
    words = text.split()
    if len(words) == 1 and words[0].lower() in SHORTHANDS:
        return True
    parts = 0
    for pattern in (_DAYS, _DATE, _TIME):
        if words and pattern.fullmatch(words[0]):
            words.pop(0)
            parts += 1
    if parts and len(words) == 1 and _ZONE.fullmatch(words[0]):
        words.pop(0)
    return parts > 0 and not words


def updates_values(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    updates = recipe.updates
    if updates is None:
        return
    if recipe.base.flavor is Flavor.NEWSTART:
        yield problem(
            locate,
            ("updates",),
            "not-bootable",
            "a NewStart image is a plain container: no host boots it, so updates: would "
            "never run (its timer calls rpm-ostree, which the image does not have)",
            "updates: belongs in a NestOS (bootable) image",
        )
        return
    if not is_ring_name(updates.ring):
        yield problem(
            locate,
            ("updates", "ring"),
            "updates-ring",
            f"{updates.ring!r} is not a ring name",
            RING_HINT,
        )
    if not is_calendar(updates.schedule):
        yield problem(
            locate,
            ("updates", "schedule"),
            "updates-schedule",
            f"{updates.schedule!r} is not a systemd calendar event",
            "as OnCalendar= takes it (systemd.time(7)), e.g. daily, `Mon..Fri 02:00` or "
            "`*-*-* 03:30:00`; `systemd-analyze calendar 'EVENT'` shows when it fires",
        )
    for key, value in (("retry", updates.retry), ("health-timeout", updates.health_timeout)):
        if value < 1:
            yield problem(
                locate,
                ("updates", key),
                "updates-span",
                f"{key} must be at least one second",
                "e.g. 5min",
            )


def updates_signatures(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """A sigstore scope stops the updater unless the host's skopeo enforces policy and
    other images are rejected (contract section 4): say so where the recipe is written,
    not only in a host's journal. A warning: a host's skopeo may well be 1.13+."""
    if recipe.updates is None or recipe.signing.reject_others:
        return
    for index, scope in enumerate(recipe.signing.scopes):
        if scope.type == "sigstore":
            yield problem(
                locate,
                ("signing", "scopes", index, "type"),
                "updates-sigstore",
                f"the updater cannot prove sigstore signatures of {scope.scope} under "
                "`default: accept`: hosts stage no image of that scope",
                "add `default: reject` to signing: (with a skopeo 1.13+ on the hosts, "
                "rpm-ostree checks sigstore), or sign with gpg (build --sign)",
                Severity.WARNING,
            )


# What Python's re reads one way and grep -E (the host's health check) another, or not at
# all: a backslash before a letter or digit (\d, \s, \b, \1), (?...) groups, lazy
# quantifiers, POSIX classes ([:digit:] is a set of characters to Python). The rest
# (literals, ., [...], * + ? {m,n}, |, (), ^, $, \. and the like) both read alike on one
# line of output; over several, grep -z lets . match a newline and Python does not.
_NOT_ERE = re.compile(r"\\[A-Za-z0-9]|\(\?|[*+?}]\?|\[:[a-z]+:\]")
_ERE_HINT = (
    "the host's health check matches it with grep -E: write [0-9] for \\d, a space for \\s, "
    "[0-9A-Za-z_] for \\w, and no (?...) groups, lazy quantifiers or [:class:] names"
)


def updates_patterns(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """With updates:, the tests' stdout patterns are also matched on the host, by the
    health script with grep -E (NestOS has no Python): a pattern must read the same."""
    if recipe.updates is None:
        return
    for index, command in enumerate(recipe.tests.commands):
        # an escaped backslash (\\) is a literal one in both: not the start of \d
        found = _NOT_ERE.search((command.stdout or "").replace("\\\\", ""))
        if found:
            yield problem(
                locate,
                ("tests", "commands", index, "stdout"),
                "updates-pattern",
                f"`{found.group(0)}` in `{command.stdout}` is not an extended regular "
                "expression: the host's health check would not read it as `nestcustom "
                "test` does",
                _ERE_HINT,
            )


RULES: tuple[Rule, ...] = (updates_values, updates_signatures, updates_patterns)
