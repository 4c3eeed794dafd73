"""What a host prints is data in the report: it can never add, reorder or hide a line."""

from __future__ import annotations

import pytest

from nestcustom.deploy.report import HostReport, text_lines
from nestcustom.sanitize import LIMIT, shown

D1 = "sha256:" + "1" * 64
FORGED = "rebase failed\nhost2  updated     a -> b\r3 updated"


def test_host_text_cannot_forge_report_lines() -> None:
    reports = [
        HostReport("host1", "failed", "a", None, error=FORGED, hint="see\u202e\u2066 it"),
        HostReport("host2", "skipped", "a", None, error="not started"),
    ]
    lines = text_lines(reports)
    assert lines == [
        "host1  failed      a -> -",
        "       error: rebase failed\\nhost2  updated     a -> b\\r3 updated",
        "       hint: see\\u202e\\u2066 it",
        "host2  skipped     a -> -",
        "       error: not started",
        "1 failed, 1 skipped",
    ]
    assert not any(line.startswith("host2  updated") for line in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text, tabs\tstay visible", "plain text, tabs\\tstay visible"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("\u200b\u00ad\u2028\u2029\x85", "\\u200b\\xad\\u2028\\u2029\\x85"),
        ("ünïcödé and 中文 stay", "ünïcödé and 中文 stay"),
    ],
)
def test_shown_makes_every_control_and_format_character_visible(text: str, expected: str) -> None:
    assert shown(text) == expected


def test_shown_bounds_the_length_and_says_so() -> None:
    text = "x" * (LIMIT + 25)
    assert shown(text) == "x" * LIMIT + "... (25 more characters)"


def test_every_field_of_a_host_is_escaped() -> None:
    report = HostReport(
        "h",
        "failed",
        "origin\nforged",
        "after\rforged",
        error="e\n1",
        hint="h\n2",
        rolled_back=True,
        rollback_verified=False,
        failure="unhealthy",
        health=("unit a.service: failed\nh updated",),
    )
    lines = text_lines([report])
    assert lines == [
        "h  failed      origin\\nforged -> after\\rforged",
        "   failure: unhealthy",
        "   error: e\\n1",
        "   hint: h\\n2",
        "   health: unit a.service: failed\\nh updated",
        "   rollback: NOT verified",
        "1 failed",
    ]
