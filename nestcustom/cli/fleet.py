"""Commands for fleets past one controller: the FleetLock server on etcd, fleet status."""

from __future__ import annotations

import re
import sys
from collections import Counter

import click

from nestcustom.cli import output
from nestcustom.cli.common import err, handle_errors
from nestcustom.errors import BadInputError

etcd_option = click.option(
    "--etcd",
    "etcd_url",
    required=True,
    metavar="URL",
    help="etcd's client URL, e.g. http://127.0.0.1:2379 (its v3 JSON gateway is used).",
)


def _groups(specs: tuple[str, ...]) -> dict[str, int]:
    slots = {}
    for spec in specs or ("default=1",):
        name, sep, count = spec.partition("=")
        if (
            not sep
            or not re.fullmatch(r"[a-zA-Z0-9.-]+", name)
            or not count.isdigit()
            or int(count) < 1
        ):
            raise BadInputError(
                f"--group {spec!r} is not GROUP=SLOTS",
                "for example --group default=2 (at least 1 slot)",
            )
        slots[name] = int(count)
    return slots


@click.group("fleetlock")
def fleetlock() -> None:
    """A FleetLock server (Zincati's reboot budget), its state in etcd."""


@fleetlock.command(
    "serve",
    epilog="""\b
Examples:
  nestcustom fleetlock serve --etcd http://127.0.0.1:2379 --listen 0.0.0.0:8080
  nestcustom fleetlock serve --etcd http://etcd:2379 --group default=2 --group workers=5 --halt-after 3
Hosts (Zincati, nestcustom deploy --fleetlock, the host-side updater) use http://HOST:PORT/.
Run several against one etcd: they keep one budget.
""",
)
@etcd_option
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="GROUP=SLOTS",
    help="A group and how many of its hosts may reboot at once (repeatable; default: default=1).",
)
@click.option(
    "--slot-ttl",
    type=click.IntRange(60),
    default=7200,
    show_default=True,
    help="Seconds after which a slot a host never released is free again.",
)
@click.option(
    "--halt-after",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Give a ring no more slots once this many of its hosts rolled back within "
    "--halt-window (0: never).",
)
@click.option("--halt-window", type=click.IntRange(60), default=3600, show_default=True)
@handle_errors
def serve(
    etcd_url: str,
    listen: str,
    groups: tuple[str, ...],
    slot_ttl: int,
    halt_after: int,
    halt_window: int,
) -> None:
    """Answer FleetLock requests (POST /v1/pre-reboot, /v1/steady-state) until stopped.

    Each reboot slot is taken and released in one etcd transaction, so several
    servers against one etcd keep one budget; a slot has a lease, so a host that
    dies holding it does not hold it forever; an etcd that does not answer
    grants nothing. The semaphore is stored where airlock stores it.
    """
    from nestcustom.fleet.etcd import Etcd
    from nestcustom.fleet.lockserver import serve as serve_fleetlock
    from nestcustom.fleet.lockstore import Budget, LockStore

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise BadInputError(f"--listen {listen!r} is not HOST:PORT", "for example 0.0.0.0:8080")
    etcd = Etcd(etcd_url)
    etcd.get("nestcustom/ping")  # etcd down at the start: say so now, not at the first host
    store = LockStore(etcd, Budget(_groups(groups), slot_ttl, halt_after, halt_window))
    serve_fleetlock(store, host.strip("[]"), int(port), err)


@click.group("fleet")
def fleet() -> None:
    """The fleet as its hosts report it to the FleetLock server."""


@fleet.command(
    "status",
    epilog="""\b
Examples:
  nestcustom fleet status --etcd http://127.0.0.1:2379
  nestcustom fleet status --etcd http://127.0.0.1:2379 --json
""",
)
@etcd_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def status(etcd_url: str, as_json: bool) -> None:
    """Hosts per ring and digest, and the ones rebooting or rolled back."""
    from nestcustom.fleet.etcd import Etcd
    from nestcustom.fleet.lockstore import Budget, LockStore

    store = LockStore(Etcd(etcd_url), Budget({}))
    hosts = store.hosts()
    by_ring = Counter(
        (str(h.get("ring") or "-"), str(h.get("digest") or "-")) for h in hosts.values()
    )
    attention = {
        i: h
        for i, h in hosts.items()
        if h.get("event") == "rebooting" or h.get("health") == "rolled-back"
    }
    if as_json:
        output.emit(
            {
                "hosts": hosts,
                "rings": [
                    {"ring": r, "digest": d, "hosts": n} for (r, d), n in sorted(by_ring.items())
                ],
            }
        )
        return
    for (ring, digest), count in sorted(by_ring.items()):
        click.echo(f"ring {ring}  {digest}  {count} host(s)")
    for holder, report in sorted(attention.items()):
        state = "rebooting" if report.get("event") == "rebooting" else "rolled back"
        click.echo(f"  {holder}: {state} (group {report.get('group')})")
    if not hosts:
        err("no host has reported yet")
        sys.exit(0)
