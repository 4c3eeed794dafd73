"""A rollout from the operator's request to per-host reports: target, hosts, journal, run.

`plan_rollout` does everything that can fail on bad input before any host is
touched (inventory, reference, journal to resume); `run_rollout` then changes
hosts under the stop signals and returns every host's report, including those
an interrupted run already finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nestcustom.deploy.hostrun import Listener, RolloutOptions
from nestcustom.deploy.inventory import Host, load_inventory
from nestcustom.deploy.journal import Journal, Replay, read_journal
from nestcustom.deploy.report import HostReport, report_from_journal
from nestcustom.deploy.rollout import rollout
from nestcustom.deploy.signals import stop_on_signals
from nestcustom.deploy.ssh import ssh_session
from nestcustom.deploy.target import Target, resolve_target
from nestcustom.errors import BadInputError


@dataclass(frozen=True)
class RolloutRequest:
    inventory: Path
    reference: str
    host_names: tuple[str, ...] = ()
    options: RolloutOptions = field(default_factory=RolloutOptions)
    signed: bool = False
    tls_verify: bool = True
    journal: Path | None = None
    resume: Path | None = None


@dataclass(frozen=True)
class RolloutPlan:
    target: Target
    hosts: tuple[Host, ...]  # the hosts still to do
    options: RolloutOptions
    journal_path: Path
    earlier: tuple[HostReport, ...] = ()  # hosts a resumed run already finished
    replay: Replay | None = None


@dataclass(frozen=True)
class RolloutResult:
    reports: tuple[HostReport, ...]
    journal_path: Path
    interrupted: bool


def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def plan_rollout(request: RolloutRequest) -> RolloutPlan:
    """Check the inputs and resolve the target; no host is contacted."""
    hosts = load_inventory(request.inventory).select(request.host_names)
    target = resolve_target(request.reference, request.signed, request.tls_verify)
    if request.resume is None:
        journal_path = request.journal or Path(f"nestcustom-deploy-{timestamp()}.jsonl")
        return RolloutPlan(target, hosts, request.options, journal_path)
    replay = read_journal(request.resume)
    if replay.header.get("target") != target.pinned:
        raise BadInputError(
            f"{request.resume} is a rollout of {replay.header.get('target')}, not {target.pinned}",
            "resume with the reference the journal was started with",
        )
    earlier = tuple(
        report_from_journal(h.name, replay.finished[h.name].data)
        for h in hosts
        if h.name in replay.finished
    )
    remaining = tuple(h for h in hosts if h.name not in replay.finished)
    return RolloutPlan(target, remaining, request.options, request.resume, earlier, replay)


def run_rollout(
    plan: RolloutPlan,
    accept_new_host_keys: bool,
    listen: Listener,
    notice: Callable[[str], None],
) -> RolloutResult:
    """Change the plan's hosts; stop signals end it at a step boundary."""
    if plan.replay is not None:
        journal = Journal(plan.journal_path)
    else:
        options = plan.options
        journal = Journal(
            plan.journal_path,
            {
                "target": plan.target.pinned,
                "hosts": [h.name for h in plan.hosts],
                "options": {
                    "batch": options.batch,
                    "max_failures": options.max_failures,
                    "reboot": options.reboot,
                },
            },
        )
    with stop_on_signals(notice) as stop, ssh_session(accept_new_host_keys) as ssh:
        reports = rollout(
            plan.hosts, plan.target, plan.options, journal, ssh, listen, stop, plan.replay
        )
    return RolloutResult((*plan.earlier, *reports), plan.journal_path, stop.is_set())
