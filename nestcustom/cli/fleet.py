"""Commands for fleets past one controller: the FleetLock server on etcd, fleet status."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

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
    budget = Budget(_groups(groups), slot_ttl, halt_after, halt_window)  # bad input: before etcd
    etcd = Etcd(etcd_url)
    etcd.get("nestcustom/ping")  # etcd down at the start: say so now, not at the first host
    store = LockStore(etcd, budget)
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
    halts = store.halts()
    # A rolled-back host reports the digest it left: it is counted apart, not as running it.
    by_ring: Counter[tuple[str, str, bool]] = Counter(
        (str(h.get("ring") or "-"), str(h.get("digest") or "-"), h.get("health") == "rolled-back")
        for h in hosts.values()
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
                    {"ring": r, "digest": d, "hosts": n}
                    for (r, d, back), n in sorted(by_ring.items())
                    if not back
                ],
                "rolled_back": [
                    {"ring": r, "from": d, "hosts": n}
                    for (r, d, back), n in sorted(by_ring.items())
                    if back
                ],
                "halted": halts,
            }
        )
        return
    for (ring, digest, back), count in sorted(by_ring.items()):
        if back:
            click.echo(f"ring {ring}  {digest}  {count} host(s) rolled back from it")
        else:
            click.echo(f"ring {ring}  {digest}  {count} host(s)")
    for ring, why in sorted(halts.items()):
        click.echo(
            f"ring {ring} HALTED: {why.get('rollbacks')} host(s) rolled back within "
            f"{why.get('window')} s (the server halts at {why.get('halt_after')}): no slots "
            f"until they age out; `nestcustom promote IMAGE --ring {ring} --undo` moves it back"
        )
    for holder, report in sorted(attention.items()):
        state = "rebooting" if report.get("event") == "rebooting" else "rolled back"
        click.echo(f"  {holder}: {state} (group {report.get('group')})")
    if not hosts:
        err("no host has reported yet")
        sys.exit(0)


@click.command(
    "promote",
    epilog="""\b
Examples:
  nestcustom promote registry.example.com/nestos/agent@sha256:4f1c... --ring canary
  nestcustom promote registry.example.com/nestos/agent@sha256:4f1c... --ring stable
  nestcustom promote registry.example.com/nestos/agent --ring canary --undo
Hosts follow IMAGE:ring-NAME by digest. Each move is a line of the journal
(promotions.jsonl: commit it, so a promotion is reviewed like any change); --undo
moves the ring back to the digest it had before its last promotion.
""",
)
@click.argument("reference", metavar="IMAGE@DIGEST")
@click.option("--ring", required=True, metavar="NAME", help="The ring: its tag is ring-NAME.")
@click.option(
    "--undo",
    is_flag=True,
    help="Move the ring back to its previous digest (give IMAGE without a digest).",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("promotions.jsonl"),
    show_default=True,
    help="The promotion journal (JSON Lines), read for --undo and appended to.",
)
@click.option(
    "--unsigned",
    is_flag=True,
    help="Do NOT check the digest's signature, even where the image's signing policy asks "
    "for it (loudly).",
)
@click.option("--tls-verify/--no-tls-verify", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def promote(
    reference: str,
    ring: str,
    undo: bool,
    journal: Path,
    unsigned: bool,
    tls_verify: bool,
    as_json: bool,
) -> None:
    """Point a ring tag (IMAGE:ring-NAME) at a digest, never at a moving tag.

    The digest must be in the registry; where the image carries a signing
    policy for its repository (recipe signing:), it must be signed by the key
    that policy names, read from the image itself, with the signature in the
    image's lookaside. The tag is moved by putting that exact manifest (skopeo
    --preserve-digests) and read back. A ring that already serves the digest is
    left alone, so a re-run changes nothing.
    """
    from nestcustom.fleet import promote as moves

    if undo:
        if "@" in reference:
            raise BadInputError(
                "--undo takes IMAGE without a digest: the journal says where the ring goes back to",
                f"nestcustom promote {reference.partition('@')[0]} --ring {ring} --undo",
            )
        moved = moves.undo(reference, ring, journal, unsigned=unsigned, tls_verify=tls_verify)
    else:
        moved = moves.promote(reference, ring, journal, unsigned=unsigned, tls_verify=tls_verify)
    trust = moved.trust
    if trust is not None and trust.warning:
        err(trust.warning)
    if as_json:
        output.emit(
            {
                "ring": ring,
                "tag": moved.tag_reference,
                "before": moved.before,
                "after": moved.after,
                "changed": moved.changed,
                "journal": str(journal),
                "signature": None
                if trust is None
                else {
                    "verified": trust.checked,
                    "note": trust.note,
                    "fingerprint": trust.fingerprint,
                    "url": trust.signature,
                },
            }
        )
        return
    if not moved.changed:
        click.echo(f"{moved.tag_reference} already serves {moved.after}: nothing to do")
        return
    click.echo(f"{moved.tag_reference}: {moved.before or '(new)'} -> {moved.after}")
    if trust is not None:
        err(f"signature: {trust.note}")
    err(f"journalled in {journal}")
