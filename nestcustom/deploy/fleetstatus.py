"""What each host runs now (`nestcustom status`): one row per host, read in parallel."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nestcustom.deploy.hoststatus import parse_status
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.ssh import Connection, SshError, SshOptions, ssh_session
from nestcustom.errors import NestcustomError


def status_row(host: Host, ssh: SshOptions) -> dict[str, Any]:
    """A host's row; one it cannot be read from says why (unreachable, auth refused, ...)."""
    row: dict[str, Any] = {"host": host.name, "reachable": False}
    try:
        status = parse_status(Connection(host, ssh).run(["rpm-ostree", "status", "--json"]).stdout)
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
    )
    return row


def fleet_status(hosts: tuple[Host, ...], accept_new_host_keys: bool) -> list[dict[str, Any]]:
    """A row per host, in inventory order; an unreachable host's row says why."""
    with ssh_session(accept_new_host_keys) as ssh, ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda h: status_row(h, ssh), hosts))
