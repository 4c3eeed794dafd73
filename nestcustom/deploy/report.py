"""What a rollout tells the operator about each host: its steps and its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepRecord:
    step: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class HostReport:
    host: str
    outcome: str  # updated | unchanged | staged | failed | skipped | interrupted
    before: str | None  # what was booted: digest, or the ostree origin
    after: str | None
    steps: tuple[StepRecord, ...] = ()
    error: str | None = None
    hint: str | None = None
    rolled_back: bool = False
    rollback_verified: bool | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("updated", "unchanged", "staged")


def report_from_journal(host: str, data: dict[str, Any]) -> HostReport:
    """A host an interrupted run finished, reported as that run recorded it."""
    outcome = str(data.get("outcome", "failed"))
    return HostReport(host, outcome, data.get("before"), data.get("after"), error=data.get("error"))
