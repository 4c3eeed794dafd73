"""The rollout's decisions, as pure functions of what hosts and the journal say.

Kept apart from the steps that talk to hosts so each rule can be tested (and
mutation-tested) on plain values: may this host be changed, which command
changes it, did it come back right, how to undo, may another host start.
"""

from __future__ import annotations

from dataclasses import dataclass

from nestcustom.deploy.hoststatus import HostFacts, HostStatus, identity, needs_experimental
from nestcustom.deploy.report import HostReport


@dataclass(frozen=True)
class Refusal:
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class DriverChoice:
    bypass_driver: bool = False
    disable_zincati: bool = False


def preflight_refusal(
    facts: HostFacts, image_arch: str | None, choice: DriverChoice
) -> Refusal | None:
    """Why this host must not be changed now, or None."""
    if facts.status.transaction:
        return Refusal(
            f"an rpm-ostree transaction is running ({facts.status.transaction})",
            "wait for it to finish, then re-run",
        )
    if facts.status.booted is None:
        return Refusal("rpm-ostree reports no booted deployment", "is this an rpm-ostree host?")
    if image_arch and facts.arch != image_arch:
        return Refusal(
            f"the host is {facts.arch}, the image is for {image_arch}",
            "build on a base of the host's stream and architecture",
        )
    if facts.status.update_driver and not (choice.bypass_driver or choice.disable_zincati):
        return Refusal(
            f"updates on this host are driven by {facts.status.update_driver}",
            "pass --disable-zincati (turns Zincati's updates off, then rebases) or --bypass-driver",
        )
    return None


def on_target(status: HostStatus, digest: str) -> bool:
    return status.booted is not None and status.booted.image_digest == digest


def staged_target(status: HostStatus, digest: str) -> bool:
    return status.staged is not None and status.staged.image_digest == digest


def rebase_argv(facts: HostFacts, ostree_ref: str, choice: DriverChoice) -> list[str]:
    """The rebase this host accepts: --experimental where its rpm-ostree needs it (SP1)."""
    argv = ["rpm-ostree", "rebase"]
    if needs_experimental(facts.rpm_ostree):
        argv.append("--experimental")
    if facts.status.update_driver and (choice.bypass_driver or choice.disable_zincati):
        # Zincati stays registered as the driver even with its updates off.
        argv.append("--bypass-driver")
    return [*argv, ostree_ref]


def staged_problem(status: HostStatus, digest: str) -> str | None:
    if staged_target(status, digest):
        return None
    return f"after the rebase the staged deployment is {identity(status.staged)}, not {digest}"


def verify_problem(status: HostStatus, digest: str) -> str | None:
    if on_target(status, digest):
        return None
    return f"came back on {identity(status.booted)}, not {digest}"


def rollback_action(status: HostStatus, previous_checksum: str) -> str:
    """How to put a host back on `previous_checksum`:

    "none" when it already boots it and nothing is staged, "drop-staged" when it
    boots it with the new deployment staged (never rebooted, or came back on the old
    one: `rollback` would then switch to the new one), else "rollback".
    """
    booted = status.booted
    if booted is not None and booted.checksum == previous_checksum:
        return "drop-staged" if status.staged is not None else "none"
    return "rollback"


def may_start(failures: int, max_failures: int, stopping: bool) -> bool:
    """Whether another host may start: the failure budget is not spent and no stop was asked."""
    return failures < max_failures and not stopping


def skip_reason(stopping: bool, failures: int) -> str:
    if stopping:
        return "not started: stopped by the operator"
    return f"not started: {failures} host(s) failed (--max-failures)"


def recheck(report: HostReport, status: HostStatus, digest: str) -> HostReport | None:
    """A host the journal says is done, against what it runs now: None when it still
    matches; else a 'drifted' report (someone changed it since; it is not redeployed)."""
    if report.outcome == "staged":
        fine = staged_target(status, digest) or on_target(status, digest)
    else:
        fine = on_target(status, digest)
    if fine:
        return None
    return HostReport(
        report.host,
        "drifted",
        report.after,
        identity(status.booted),
        report.steps,
        error=f"the journal says {report.outcome}, but the host now boots {identity(status.booted)}",
        hint="someone changed it after this rollout; start a new rollout to move it again",
    )
