"""Kernel arguments on one host, in its rollout: applied to the staged deployment after the
rebase (`rpm-ostree kargs` works on the pending deployment: 2022.8 and 2022.16
src/app/rpmostree-builtin-kargs.cxx, rpmostree_syscore_get_origin_merge_deployment), read
back, then checked on /proc/cmdline after the reboot. The plan is kargs.plan's."""

from __future__ import annotations

from dataclasses import dataclass

from nestcustom.deploy.hoststatus import HostFacts, HostStatus, parse_status
from nestcustom.deploy.kargs import (
    ImageKargs,
    KargsPlan,
    comparable,
    kargsd_appends,
    plan,
    problems,
)
from nestcustom.deploy.ssh import Connection
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.sanitize import clean

# After `rpm-ostree kargs ...`: the staged arguments and the status, in one command.
_READ_BACK = "echo ==kargs; rpm-ostree kargs; echo ==status; rpm-ostree status --json\n"


@dataclass(frozen=True)
class Applied:
    plan: KargsPlan
    status: HostStatus | None  # after `rpm-ostree kargs`; None when nothing had to change


class KargsFailed(NestcustomError):
    """The arguments could not be applied or are not what the plan says."""


def apply(conn: Connection, image: ImageKargs, facts: HostFacts) -> Applied:
    """Apply what `image` asks for on the host's staged deployment (nothing runs when the
    host already has it). Runs privileged, like the rebase."""
    wanted = image.for_arch(facts.arch)
    try:
        booted = kargsd_appends(facts.kargs_d, facts.arch)
    except BadInputError as exc:
        raise KargsFailed(exc.message, "fix or remove that file on the host") from None
    staged = conn.run(["rpm-ostree", "kargs"], privileged=True).stdout.split()
    result = plan(wanted, booted, staged)
    if not result.options:
        return Applied(result, None)
    done = conn.script(
        '"$@" >&2 || exit $?\n' + _READ_BACK,
        "rpm-ostree", "kargs", *result.options,
        privileged=True, check=False, name="rpm-ostree kargs",
    )  # fmt: skip
    if done.returncode != 0:
        tail = clean(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
        raise KargsFailed(
            f"rpm-ostree kargs {' '.join(result.options)} failed: {tail or done.returncode}",
            "the staged deployment keeps the image; run `rpm-ostree kargs` on the host to see "
            "its arguments",
        )
    kargs, _, status = done.stdout.partition("==kargs\n")[2].partition("\n==status\n")
    missing = problems(result, kargs)
    if missing:
        raise KargsFailed(
            f"after rpm-ostree kargs the staged deployment's arguments: {'; '.join(missing)}"
        )
    return Applied(result, parse_status(status))


def after_boot(result: KargsPlan, cmdline: str) -> str | None:
    """Why /proc/cmdline after the reboot is not what the plan made, or None."""
    missing = problems(result, cmdline)
    return f"/proc/cmdline: {'; '.join(missing)}" if missing else None


def restored(before: str, after: str) -> str | None:
    """Why the command line after a rollback is not the one before the rollout, or None
    (what ostree and the boot loader set per deployment left out)."""
    old, new = comparable(before), comparable(after)
    if old == new:
        return None
    gone = [a for a in old if a not in new]
    more = [a for a in new if a not in old]
    parts = ([f"missing {' '.join(gone)}"] if gone else []) + (
        [f"new {' '.join(more)}"] if more else []
    )
    return "/proc/cmdline is not what it was before the rollout: " + "; ".join(
        parts or ["reordered"]
    )
