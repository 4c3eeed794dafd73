"""The recipe's `updates:` as a frozen value, and the systemd time spans it is written in."""

from __future__ import annotations

import re
from typing import Any

from nestcustom.recipe.parts import Updates

# systemd.time(7) units this key takes, in seconds (the schema's pattern names the same).
_UNITS = {
    **dict.fromkeys(("", "s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
}
_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*")


def seconds(span: str) -> int | None:
    """A time span as systemd writes it (`2h`, `1h 30min`, `90`) in whole seconds; None
    when it is not one."""
    total = 0.0
    at = 0
    text = span.strip()
    if not text:
        return None
    while at < len(text):
        match = _PART.match(text, at)
        if not match or match.end() == at or match.group(2) not in _UNITS:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        at = match.end()
    return round(total)


def updates(entry: dict[str, Any] | None) -> Updates | None:
    """The schema has checked the shape; a span it let through that does not parse is the
    rules' to report (rules_updates), so it falls back to the default here."""
    if entry is None:
        return None
    default = Updates(ring="", fleetlock="")

    def span(key: str, fallback: int) -> int:
        value = seconds(str(entry.get(key, "")))
        return fallback if value is None else value

    return Updates(
        ring=str(entry["ring"]),
        fleetlock=str(entry["fleetlock"]),
        group=str(entry.get("group", default.group)),
        schedule=str(entry.get("schedule", default.schedule)),
        window=span("window", default.window),
        retry=span("retry", default.retry),
        health_timeout=span("health-timeout", default.health_timeout),
        image=entry.get("image"),
    )
