"""What a rollout tells the operator about each host: its steps and its outcome.

Reports are frozen values; a finished host's report is written whole into the
journal, so a resumed rollout shows it exactly as the run that finished it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestcustom.sanitize import shown

# updated: on the target, verified | unchanged: was already there | staged: --no-reboot
# rolled back: `nestcustom rollback` booted the previous deployment, verified
# failed | busy: another rollout holds the host | drifted: the journal said done, the host
# no longer runs the target | skipped: never started | interrupted: stopped, --resume goes on
OK_OUTCOMES = frozenset({"updated", "unchanged", "staged", "rolled back"})
NOT_BACK = "not back; no rollback sent"
KEY_CHANGED = "none sent: running the target, key changed, not verified"
# What kind of failure a failed host had (`failure` in the reports), for people and tools.
FAILURES = (
    "preflight",  # refused or unreadable before anything changed
    "host-lock",  # the host lock could not be taken (another rollout, or the lock file)
    "rebase",  # rpm-ostree rebase failed or staged something else
    "fleetlock",  # no reboot slot: the FleetLock server failed or every slot stayed held
    "reboot",  # the reboot could not be requested
    "not-back",  # no answer after the reboot
    "key-changed",  # answered after the reboot with another host key: nothing more was sent
    "wrong-image",  # came back on another deployment than the target
    "unhealthy",  # on the target, but a health check failed (system state, units, checks)
    "untrusted",  # the image's signature was not proven on the host: nothing was staged
    "kernel-arguments",  # the image's kernel arguments could not be applied or did not boot
)


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
    failure: str | None = None  # one of FAILURES for a failed host
    health: tuple[str, ...] = ()  # the health checks that failed, one line each
    trust: str | None = None  # what was proven of the target's signature on the host (trust.py)

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
    fields = {f.name for f in dataclasses.fields(HostReport)} - {"steps", "health"}
    health = tuple(str(line) for line in data.get("health", ()))
    return HostReport(**{k: v for k, v in data.items() if k in fields}, steps=steps, health=health)


def text_lines(reports: list[HostReport]) -> list[str]:
    """The text report: a line per host, then one indented line per field it has, then the
    counts. Every value from a host passes through `shown`, so none can start a line of its
    own (a forged "host2 updated"), and the closing counts are computed from the outcomes."""
    if not reports:
        return ["no hosts"]
    width = max(len(r.host) for r in reports)
    pad = " " * width
    lines = []
    for r in reports:
        lines.append(
            f"{shown(r.host):{width}}  {r.outcome:11} {shown(r.before or '-')} -> {shown(r.after or '-')}"
        )
        fields = [("trust", r.trust), ("failure", r.failure), ("error", r.error), ("hint", r.hint)]
        fields += [("health", line) for line in r.health]
        fields.append(("rollback", r.rollback_line()))
        lines += [f"{pad}  {name}: {shown(value)}" for name, value in fields if value]
    counts = Counter(r.outcome for r in reports)
    lines.append(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
    return lines


@dataclass(frozen=True)
class RolloutResult:
    """A rollout's (or a rollback's) reports, its journal, and the signal that stopped it."""

    reports: tuple[HostReport, ...]
    journal_path: Path
    stopped_by: str | None  # the stop signal's name (SIGINT, SIGTERM, SIGHUP), None: ran to the end

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None
