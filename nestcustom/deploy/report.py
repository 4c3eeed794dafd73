"""What a rollout tells the operator about each host: its steps and its outcome.

Reports are frozen values; a finished host's report is written whole into the
journal, so a resumed rollout shows it exactly as the run that finished it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# updated: on the target, verified | unchanged: was already there | staged: --no-reboot
# rolled back: `nestcustom rollback` booted the previous deployment, verified
# failed | busy: another rollout holds the host | drifted: the journal said done, the host
# no longer runs the target | skipped: never started | interrupted: stopped, --resume goes on
OK_OUTCOMES = frozenset({"updated", "unchanged", "staged", "rolled back"})
NOT_BACK = "not back; no rollback sent"


@dataclass(frozen=True)
class StepRecord:
    step: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class HostReport:
    host: str
    outcome: str
    before: str | None  # what was booted: digest, or the ostree origin
    after: str | None
    steps: tuple[StepRecord, ...] = ()
    error: str | None = None
    hint: str | None = None
    rolled_back: bool = False  # a rollback (or dropping the staged deployment) was done
    rollback_verified: bool | None = None
    rollback_note: str | None = None  # e.g. NOT_BACK when no rollback could be sent
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in OK_OUTCOMES

    def rollback_line(self) -> str | None:
        """The rollback, in words, when one was called for."""
        if self.rollback_note:
            return self.rollback_note
        if not self.rolled_back:
            return None
        return "verified" if self.rollback_verified else "NOT verified"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def report_from_dict(data: dict[str, Any]) -> HostReport:
    """A report as `as_dict` wrote it (raises KeyError/TypeError on anything else)."""
    steps = tuple(StepRecord(**step) for step in data.get("steps", ()))
    fields = {f.name for f in dataclasses.fields(HostReport)} - {"steps"}
    return HostReport(**{k: v for k, v in data.items() if k in fields}, steps=steps)


@dataclass(frozen=True)
class RolloutResult:
    """A rollout's (or a rollback's) reports, its journal, and the signal that stopped it."""

    reports: tuple[HostReport, ...]
    journal_path: Path
    stopped_by: str | None  # the stop signal's name (SIGINT, SIGTERM, SIGHUP), None: ran to the end

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None
