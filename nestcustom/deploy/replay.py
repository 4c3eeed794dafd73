"""What a journal says happened, per host: the basis of `deploy --resume`.

A pure fold over the rows `journal.read_rows` returns; no host is contacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestcustom.deploy.journal import Row
from nestcustom.deploy.report import HostReport, report_from_dict
from nestcustom.errors import BadInputError

FINAL_STEPS = frozenset({"done", "failed"})
STEPS = frozenset({"preflight", "rebase", "reboot", "wait", "verify", "rollback"})
# Steps after which the host may be rebooting, if nothing later was recorded.
_REBOOTING = {("reboot", "start"), ("reboot", "ok"), ("wait", "start"), ("rollback", "start")}


@dataclass(frozen=True)
class Header:
    id: str
    target: str
    hosts: tuple[str, ...]
    options: dict[str, Any]


@dataclass(frozen=True)
class Trail:
    """One host's history in the journal."""

    final: HostReport | None = None  # the report of its done or failed row
    last: tuple[str, str] | None = None  # (step, state) of its latest row
    last_step: tuple[str, str] | None = None  # ... of its latest row of a step (STEPS)
    before: str | None = None  # what it booted when this rollout first saw it
    rebased: bool = False
    slot_held: bool = False  # a FleetLock slot taken and not released
    kargs: dict[str, Any] | None = None  # the kernel arguments applied: present, absent, cmdline

    @property
    def rebooting(self) -> bool:
        """The controller stopped while this host was (or may have been) rebooting."""
        return self.final is None and self.last_step in _REBOOTING


@dataclass(frozen=True)
class Replay:
    header: Header
    hosts: dict[str, Trail]

    def trail(self, host: str) -> Trail:
        return self.hosts.get(host, Trail())

    @property
    def failures(self) -> int:
        """Hosts whose final report is a failure: they count against --max-failures."""
        return sum(1 for t in self.hosts.values() if t.final and t.final.outcome == "failed")


def replay(path: Path, rows: list[Row]) -> Replay:
    """Fold the journal's rows into one Trail per host."""
    (_, first), *rest = rows
    raw = first["rollout"]
    header = Header(raw["id"], raw["target"], tuple(raw["hosts"]), dict(raw["options"]))
    trails: dict[str, dict[str, Any]] = {}
    for number, row in rest:
        if "resume" in row:
            continue
        host, step, state, data = row["host"], row["step"], row["state"], row["data"]
        if host not in header.hosts:
            raise BadInputError(f"{path}:{number}:1: host {host!r} is not part of this rollout")
        trail = trails.setdefault(host, {})
        trail["last"] = (step, state)
        if step in STEPS:
            trail["last_step"] = (step, state)
        if "before" in data and "before" not in trail:
            trail["before"] = data["before"]
        if step == "rebase" and state == "ok":
            trail["rebased"] = True
        if step == "kargs":
            trail["kargs"] = data
        if step == "slot":
            trail["slot_held"] = state == "taken"
        if step in FINAL_STEPS:
            try:
                trail["final"] = report_from_dict(data["report"])
            except (KeyError, TypeError) as exc:
                raise BadInputError(
                    f"{path}:{number}:1: the {step} row of {host} holds no report ({exc})"
                ) from None
    return Replay(header, {host: Trail(**fields) for host, fields in trails.items()})
