"""How a rollout ends: 0 only when every host is fine, 1 with a failed host, 128+N when
signal N stopped it (143 for SIGTERM), with every host reported either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.cli.hosts import _finish
from nestcustom.deploy.report import HostReport, RolloutResult


def finish(reports: list[HostReport], stopped_by: str | None = None) -> int:
    result = RolloutResult(tuple(reports), Path("j.jsonl"), stopped_by)
    try:
        _finish(result, False, {}, "finish with --resume j.jsonl")
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_every_host_fine_exits_0() -> None:
    assert (
        finish([HostReport("a", "updated", "x", "y"), HostReport("b", "unchanged", "y", "y")]) == 0
    )


@pytest.mark.parametrize("outcome", ["failed", "busy", "skipped", "interrupted", "drifted"])
def test_a_host_not_fine_exits_1(outcome: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert finish([HostReport("a", "updated", "x", "y"), HostReport("b", outcome, "x", None)]) == 1
    assert f"b  {outcome}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("signal_name", "code"), [("SIGTERM", 143), ("SIGINT", 130), ("SIGHUP", 129)]
)
def test_a_stop_signal_exits_128_plus_its_number(
    signal_name: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = [HostReport("a", "updated", "x", "y"), HostReport("b", "skipped", "x", None)]
    assert finish(reports, signal_name) == code
    captured = capsys.readouterr()
    assert "b  skipped" in captured.out and f"interrupted by {signal_name}" in captured.err
