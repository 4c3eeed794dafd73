"""What each host runs now (`nestcustom status`): one row per host, read in parallel."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nestcustom import proc
from nestcustom.deploy.hoststatus import Deployment, parse_status
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.ssh import Connection, SshError, SshOptions, ssh_session
from nestcustom.deploy.trust import VERIFIED_LOG
from nestcustom.errors import NestcustomError
from nestcustom.sanitize import clean

STATUS_SCRIPT = (
    f"rpm-ostree status --json || exit $?; echo ==verified; cat {VERIFIED_LOG} 2>/dev/null; true\n"
)


def status_row(host: Host, ssh: SshOptions) -> dict[str, Any]:
    """A host's row; one it cannot be read from says why (unreachable, auth refused, ...)."""
    row: dict[str, Any] = {"host": host.name, "reachable": False}
    try:
        with proc.abandonable():  # a stop signal ends the read at once
            out = Connection(host, ssh).script(STATUS_SCRIPT, name="reading the status").stdout
        text, _, log = out.partition("\n==verified\n")
        status = parse_status(text)
    except SshError as exc:
        row.update(failure=exc.failure.value, error=exc.message.removeprefix(f"{host.name}: "))
        return row
    except NestcustomError as exc:
        row.update(failure="unreadable", error=exc.message)
        return row
    booted, staged, rollback = status.booted, status.staged, status.rollback
    row.update(
        reachable=True,
        booted=booted.source if booted else None,
        digest=booted.image_digest if booted else None,
        version=booted.version if booted else None,
        staged=staged.source if staged else None,
        rollback=rollback.source if rollback else None,
        transaction=status.transaction,
        update_driver=status.update_driver,
        **verification(booted, log),
    )
    return row


def verification(booted: Deployment | None, log: str) -> dict[str, Any]:
    """Whether the host follows a verified reference: rpm-ostree's own (ostree-image-signed:),
    or a signature nestcustom deploy proved on the host for the booted digest (trust.py)."""
    reference = booted.image_reference if booted else None
    if reference and reference.startswith("ostree-image-signed:"):
        return {"verified": True, "verification": "ostree-image-signed: (rpm-ostree checks it)"}
    digest = booted.image_digest if booted else None
    for line in reversed(log.splitlines()):
        words = line.split()
        if len(words) == 3 and digest and words[0] == digest:
            if words[1] == "bootstrap":
                return {"verified": False, "verification": "trust bootstrapped: NOT verified"}
            return {
                "verified": True,
                "verification": f"signature verified by nestcustom deploy (key {clean(words[1])[-16:]})",
            }
    return {"verified": False, "verification": "unverified"}


def fleet_status(hosts: tuple[Host, ...], accept_new_host_keys: bool) -> list[dict[str, Any]]:
    """A row per host, in inventory order; an unreachable host's row says why."""
    with ssh_session(accept_new_host_keys) as ssh:
        pool = ThreadPoolExecutor(max_workers=8)
        try:
            return list(pool.map(lambda h: status_row(h, ssh), hosts))
        except KeyboardInterrupt as exc:
            # Reading changes nothing on a host: end the ssh runs now rather than wait for
            # a silent host's ConnectTimeout in every worker.
            proc.stop_running()
            signum, _ = proc.stop_signal_of(exc)
            raise proc.Interrupted(signum, "status only reads; no host was changed") from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
