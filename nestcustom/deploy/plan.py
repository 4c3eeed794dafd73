"""A rollout from the operator's request to per-host reports: target, hosts, journal, run.

`plan_rollout` does everything that can fail on bad input before any host is
touched (inventory, reference and image, the journal to resume and what it
recorded); `run_rollout` then changes hosts under the stop signals and returns
every host's report, including those an earlier run of the rollout finished.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nestcustom.deploy.decide import recheck
from nestcustom.deploy.fleetlock import FleetLock
from nestcustom.deploy.health import from_record, to_record
from nestcustom.deploy.hostlock import this_controller, valid_rollout_id
from nestcustom.deploy.hostpolicy import TrustOptions
from nestcustom.deploy.hostrun import HostRun, Listener, Owner, RolloutOptions
from nestcustom.deploy.hoststatus import parse_status
from nestcustom.deploy.inventory import Host, load_inventory
from nestcustom.deploy.journal import Journal, journal_exists, read_rows
from nestcustom.deploy.kargs import KargsPlan
from nestcustom.deploy.replay import Replay, replay
from nestcustom.deploy.report import HostReport, RolloutResult
from nestcustom.deploy.rollout import rollout
from nestcustom.deploy.signals import StopFlags, stop_on_signals
from nestcustom.deploy.ssh import Connection, SshOptions, ssh_session
from nestcustom.deploy.target import Target, resolve_target
from nestcustom.deploy.trust import trust_options
from nestcustom.errors import BadInputError, NestcustomError

# Options a resumed rollout takes from its journal (the CLI's names, for messages).
RECORDED = {
    "batch": "--batch",
    "max_failures": "--max-failures",
    "reboot": "--no-reboot",
    "bypass_driver": "--bypass-driver",
    "disable_zincati": "--disable-zincati",
    "reboot_timeout": "--reboot-timeout",
    "fleetlock": "--fleetlock",
    "group": "--group",
    "health": "--recipe",
}


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
    explicit: frozenset[str] = frozenset()  # RECORDED keys the operator set on the command line
    take_over: tuple[str, ...] = ()  # rollout ids whose host locks may be taken
    unsigned: bool = False  # --unsigned: no signature check, even where the image asks for one
    bootstrap_trust: bool = False  # --bootstrap-trust: hosts without a policy get this image


@dataclass(frozen=True)
class RolloutPlan:
    id: str
    target: Target
    hosts: tuple[Host, ...]  # the hosts still to do
    options: RolloutOptions
    journal_path: Path
    earlier: tuple[tuple[Host, HostReport], ...] = ()  # hosts an earlier run finished
    replay: Replay | None = None
    warnings: tuple[str, ...] = ()
    take_over: tuple[str, ...] = ()
    trust: TrustOptions | None = None  # whether and how hosts prove the signature (trust.py)


def with_trust(plan: RolloutPlan, request: RolloutRequest) -> RolloutPlan:
    """The plan with its signature checks decided (and a loud warning when they are off)."""
    trust = trust_options(
        request.reference,
        dict(plan.target.labels),
        request.signed,
        request.unsigned,
        request.bootstrap_trust,
    )
    warnings = plan.warnings
    if trust.unsigned and trust.required:
        warnings += (
            f"warning: --unsigned: signatures are NOT checked on any host, although {trust.reason}",
        )
    return replace(plan, trust=trust, warnings=warnings)


def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def recorded_options(options: RolloutOptions) -> dict[str, Any]:
    lock = options.fleetlock
    return {
        "batch": options.batch,
        "max_failures": options.max_failures,
        "reboot": options.reboot,
        "bypass_driver": options.bypass_driver,
        "disable_zincati": options.disable_zincati,
        "reboot_timeout": options.reboot_timeout,
        "fleetlock": lock.base_url if lock else None,
        "group": lock.group if lock else None,
        "health": to_record(options.health),
    }


def options_from_record(path: Path, record: dict[str, Any]) -> RolloutOptions:
    try:
        # str(): a hand-edited URL that is no text is refused by FleetLock, not a traceback.
        url = record["fleetlock"]
        lock = FleetLock(str(url), record["group"]) if url else None
        return RolloutOptions(
            int(record["batch"]),
            int(record["max_failures"]),
            _flag(record, "reboot"),
            _flag(record, "bypass_driver"),
            _flag(record, "disable_zincati"),
            float(record["reboot_timeout"]),
            lock,
            from_record(record.get("health") or {"source": "", "checks": []}),
        )
    except (KeyError, TypeError, ValueError, BadInputError) as exc:
        raise BadInputError(
            f"{path}:1:1: the rollout header's options are not readable ({exc})"
        ) from None


def _flag(record: dict[str, Any], key: str) -> bool:
    """A recorded flag, as JSON's true or false: bool() would read "false" as True."""
    value = record[key]
    if not isinstance(value, bool):
        raise ValueError(f"{key}: true or false, not {value!r}")
    return value


def plan_rollout(request: RolloutRequest) -> RolloutPlan:
    """Check the inputs, resolve and check the image; no host is contacted."""
    if request.unsigned and request.signed:
        raise BadInputError("--signed and --unsigned exclude each other")
    return with_trust(_plan(request), request)


def _plan(request: RolloutRequest) -> RolloutPlan:
    bad = [t for t in request.take_over if not valid_rollout_id(t)]
    if bad:
        raise BadInputError(f"--take-over {bad[0]!r} is not a rollout id (32 hex digits)")
    if request.resume is not None and request.journal is not None:
        raise BadInputError(
            "--journal cannot be combined with --resume",
            "a resumed rollout goes on writing to the journal it resumes",
        )
    if request.resume is not None and request.host_names:
        raise BadInputError(
            "--hosts cannot be combined with --resume",
            "a resumed rollout covers exactly the hosts it was started with",
        )
    if request.resume is None:
        rollout_id = uuid.uuid4().hex
        # The default name carries the rollout's id too: two rollouts started in the same
        # second (a retry, a second terminal) must not collide on one journal.
        default = Path(f"nestcustom-deploy-{timestamp()}-{rollout_id[:8]}.jsonl")
        journal_path = request.journal or default
        if journal_path.exists():
            raise journal_exists(journal_path)
        inventory = load_inventory(request.inventory)
        hosts = inventory.select(request.host_names)
        target = resolve_target(request.reference, request.signed, request.tls_verify)
        return RolloutPlan(
            rollout_id,
            target,
            hosts,
            request.options,
            journal_path,
            warnings=inventory.warnings,
            take_over=request.take_over,
        )
    path = request.resume
    done = replay(path, read_rows(path))
    inventory = load_inventory(request.inventory)
    target = resolve_target(request.reference, request.signed, request.tls_verify)
    if done.header.target != target.pinned:
        raise BadInputError(
            f"{path}:1:1: this journal is a rollout of {done.header.target}, not {target.pinned}",
            "resume with the reference the journal was started with",
        )
    options = options_from_record(path, done.header.options)
    given = recorded_options(request.options)
    for key in sorted(request.explicit & set(RECORDED)):
        if given[key] != done.header.options.get(key):
            raise BadInputError(
                f"{RECORDED[key]} differs from the rollout being resumed "
                f"({done.header.options.get(key)!r} there)",
                "a resumed rollout keeps the options it was started with; leave the option out",
            )
    by_name = {h.name: h for h in inventory.hosts}
    missing = [n for n in done.header.hosts if n not in by_name]
    if missing:
        raise BadInputError(
            f"{request.inventory}: hosts of the rollout are no longer in the inventory: "
            + ", ".join(missing),
            "resume with the inventory the rollout was started with",
        )
    hosts = tuple(by_name[n] for n in done.header.hosts)
    earlier = tuple((h, t.final) for h in hosts if (t := done.trail(h.name)).final is not None)
    remaining = tuple(h for h in hosts if done.trail(h.name).final is None)
    return RolloutPlan(
        done.header.id,
        target,
        remaining,
        options,
        path,
        earlier,
        done,
        inventory.warnings,
        request.take_over,
    )


def _open_journal(plan: RolloutPlan, owner: Owner) -> Journal:
    if plan.replay is not None:
        journal = Journal.reopen(plan.journal_path, plan.id)
        journal.write({"resume": {"controller": owner.controller}})
        return journal
    hosts = [h.name for h in plan.hosts]
    header = {
        "id": plan.id,
        "target": plan.target.pinned,
        "hosts": hosts,
        "options": recorded_options(plan.options),
        "controller": owner.controller,
    }
    return Journal.create(plan.journal_path, "rollout", header)


def _recheck(host: Host, report: HostReport, target: Target, ssh: SshOptions) -> HostReport:
    """A finished host as it is now: its recorded report, or why that no longer holds."""
    if report.outcome not in ("updated", "unchanged", "staged"):
        return report  # failures are final: never redeployed by a resume
    try:
        status = parse_status(Connection(host, ssh).run(["rpm-ostree", "status", "--json"]).stdout)
    except NestcustomError as exc:
        return replace(
            report,
            outcome="unchecked",
            error=f"the journal says {report.outcome}; re-checking it failed: "
            + exc.message.removeprefix(f"{host.name}: "),
            hint=exc.hint,
        )
    return recheck(report, status, target.digest) or report


def run_rollout(
    plan: RolloutPlan,
    accept_new_host_keys: bool,
    listen: Listener,
    notice: Callable[[str], None],
) -> RolloutResult:
    """Change the plan's hosts; stop signals end it at a step boundary."""
    owner = Owner(plan.id, str(plan.journal_path.resolve()), this_controller(), plan.take_over)
    lock = plan.options.fleetlock
    if lock is not None and plan.hosts and plan.options.reboot:
        # Before anything changes: a lock server that is down, failing or refuses the group
        # would otherwise let every host be rebased, then rolled back for want of a slot.
        lock.check()
    journal = _open_journal(plan, owner)
    try:
        with stop_on_signals(notice) as stops, ssh_session(accept_new_host_keys) as ssh:
            with ThreadPoolExecutor(max_workers=8) as pool:
                earlier = list(
                    pool.map(
                        lambda pair: _recheck(pair[0], pair[1], plan.target, ssh), plan.earlier
                    )
                )
            for report in earlier:
                journal.record(report.host, "recheck", "ok", outcome=report.outcome)
            runs = [
                _host_run(plan, host, journal, listen, stops, owner, ssh) for host in plan.hosts
            ]
            failures = plan.replay.failures if plan.replay else 0
            reports = rollout(runs, plan.options.batch, plan.options.max_failures, failures, listen)
    finally:
        journal.close()
    by_name = {r.host: r for r in (*earlier, *reports)}
    order = plan.replay.header.hosts if plan.replay else tuple(h.name for h in plan.hosts)
    return RolloutResult(tuple(by_name[n] for n in order), plan.journal_path, stops.stopped_by)


def _host_run(
    plan: RolloutPlan,
    host: Host,
    journal: Journal,
    listen: Listener,
    stops: StopFlags,
    owner: Owner,
    ssh: SshOptions,
) -> HostRun:
    run = HostRun(
        host, Connection(host, ssh), plan.target, plan.options, journal, listen, stops, owner
    )
    run.trust = plan.trust
    if plan.replay is not None:
        trail = plan.replay.trail(host.name)
        run.resumed = trail.rebased
        run.earlier_before = trail.before
        run.was_rebooting = trail.rebooting
        run.slot_held = trail.slot_held
        if trail.kargs is not None:  # applied before the stop: checked after the reboot
            run.kargs = KargsPlan(
                (), tuple(trail.kargs.get("present", ())), tuple(trail.kargs.get("absent", ()))
            )
            run.cmdline_before = str(trail.kargs.get("cmdline", ""))
        # The earlier run may have left its lock on the host (it is ours: released at the end).
        run.lock_held = trail.last is not None and trail.last[0] not in ("skipped", "busy")
    return run
