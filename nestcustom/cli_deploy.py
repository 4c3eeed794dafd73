"""Command line for hosts: deploy, status, rollback (registered on the main group)."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nestcustom import registry
from nestcustom.cli import Settings, _err, cli, handle_errors
from nestcustom.deploy.fleetlock import FleetLock
from nestcustom.deploy.hoststatus import parse_status
from nestcustom.deploy.inventory import Host, load_inventory
from nestcustom.deploy.journal import Journal, read_journal
from nestcustom.deploy.rollout import (
    HostReport,
    RolloutOptions,
    Target,
    rollback_host,
    rollout,
)
from nestcustom.deploy.ssh import Connection, SshError, SshOptions
from nestcustom.errors import EXIT_FAILURE, EXIT_INTERRUPTED, BadInputError
from nestcustom.schema import recipe_schema

if TYPE_CHECKING:
    from nestcustom.progress import HostProgress


def _progress(hosts: list[str], live: bool) -> HostProgress:
    from nestcustom.progress import HostProgress  # rich is only needed once hosts are changed

    return HostProgress(hosts, live)


inventory_option = click.option(
    "--inventory",
    "-i",
    "inventory_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory YAML (nestcustom's, or an Ansible YAML inventory's hosts and vars).",
)
hosts_option = click.option(
    "--hosts", "host_names", multiple=True, help="Only these hosts or groups (repeatable)."
)
accept_option = click.option(
    "--accept-new-host-keys",
    is_flag=True,
    help="Trust keys of hosts not yet in known_hosts (a changed key is always refused).",
)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C, SIGTERM and a lost terminal (SIGHUP) ask running hosts to stop at a step boundary."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        stop.set()
        _err(f"\n{signal.Signals(signum).name}: no new host or step starts; running steps finish")

    previous = {
        s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def ssh_options(accept_new: bool) -> Iterator[SshOptions]:
    # Control sockets live in a private directory that goes away with the run.
    with tempfile.TemporaryDirectory(prefix="nc-ssh-") as control:
        yield SshOptions(Path(control), accept_new)


def resolve_target(reference: str, signed: bool, tls_verify: bool) -> Target:
    """Pin the reference to one digest, once: a tag moving mid-rollout cannot split the fleet."""
    repository, _, digest = reference.partition("@")
    # The recipe schema's image-reference rule, so both read references alike.
    image_rule = recipe_schema()["properties"]["base"]["properties"]["image"]
    if not re.fullmatch(image_rule["pattern"], repository):
        raise BadInputError(
            f"{reference!r} is not a valid image reference",
            "write REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST (as `nestcustom build --push` prints)",
        )
    if not digest:
        digest, _ = registry.manifest(reference, tls_verify=tls_verify)
        last = repository.rsplit("/", 1)[-1]
        repository = repository.rsplit(":", 1)[0] if ":" in last else repository
    elif not digest.startswith("sha256:") or len(digest) != 71:
        raise BadInputError(f"{reference}: the digest must be sha256: and 64 hex digits")
    pinned = f"{repository}@{digest}"
    arch = registry.image_architecture(pinned, tls_verify=tls_verify)
    return Target(pinned, digest, arch, signed)


def _from_journal(host: str, data: dict[str, Any]) -> HostReport:
    """A host an interrupted run finished, reported as that run recorded it."""
    outcome = str(data.get("outcome", "failed"))
    return HostReport(host, outcome, data.get("before"), data.get("after"), error=data.get("error"))


def _report(reports: list[HostReport], as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        click.echo(
            json.dumps({**extra, "hosts": [dataclasses.asdict(r) for r in reports]}, indent=2)
        )
        return
    width = max(len(r.host) for r in reports)
    for r in reports:
        line = f"{r.host:{width}}  {r.outcome:11} {r.before or '-'} -> {r.after or '-'}"
        if r.error:
            line += f"\n{'':{width}}  error: {r.error}"
            if r.hint:
                line += f"\n{'':{width}}  hint: {r.hint}"
        if r.rolled_back:
            line += f"\n{'':{width}}  rolled back: {'verified' if r.rollback_verified else 'NOT verified'}"
        click.echo(line)
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    click.echo(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


@cli.command(
    epilog="""\b
Examples:
  nestcustom deploy -i hosts.yaml registry.example.com/custom/nestos-debug@sha256:4e85...
  nestcustom deploy -i hosts.yaml registry.example.com/custom/nestos-debug:latest --batch 4 --max-failures 2
  nestcustom deploy -i hosts.yaml REF --hosts canary --dry-run
  nestcustom deploy -i hosts.yaml REF --resume nestcustom-deploy-20261124T091500Z.jsonl
"""
)
@inventory_option
@click.argument("reference")
@hosts_option
@click.option(
    "--batch",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Hosts changing at once.",
)
@click.option(
    "--max-failures",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Start no new host once this many have failed.",
)
@click.option(
    "--no-reboot", is_flag=True, help="Stage the new deployment only; it boots at the next reboot."
)
@click.option("--bypass-driver", is_flag=True, help="Rebase even where Zincati drives updates.")
@click.option(
    "--disable-zincati", is_flag=True, help="Turn Zincati's automatic updates off, then rebase."
)
@click.option(
    "--signed", is_flag=True, help="Use ostree-image-signed:docker:// (policy.json must trust it)."
)
@click.option(
    "--reboot-timeout",
    type=click.FloatRange(10),
    default=600,
    show_default=True,
    help="Seconds to wait for a host to come back.",
)
@click.option(
    "--fleetlock", "fleetlock_url", help="FleetLock server URL: take a reboot slot per host."
)
@click.option("--group", default="default", show_default=True, help="FleetLock group.")
@click.option(
    "--tls-verify/--no-tls-verify",
    default=True,
    show_default=True,
    help="Verify TLS when nestcustom resolves the reference (hosts use their own config).",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to record each step (default: ./nestcustom-deploy-TIME.jsonl).",
)
@click.option(
    "--resume",
    "resume_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Finish an interrupted rollout from its journal; finished hosts are not redone.",
)
@click.option(
    "--dry-run", is_flag=True, help="Resolve the digest and show the plan; change nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@accept_option
@click.pass_obj
@handle_errors
def deploy(
    settings: Settings,
    inventory_path: Path,
    reference: str,
    host_names: tuple[str, ...],
    batch: int,
    max_failures: int,
    no_reboot: bool,
    bypass_driver: bool,
    disable_zincati: bool,
    signed: bool,
    reboot_timeout: float,
    fleetlock_url: str | None,
    group: str,
    tls_verify: bool,
    journal_path: Path | None,
    resume_path: Path | None,
    dry_run: bool,
    as_json: bool,
    accept_new_host_keys: bool,
) -> None:
    """Rebase hosts to an image, reboot them, verify the booted digest, roll back on failure.

    Per host: preflight (status, transaction, Zincati, architecture) -> rpm-ostree
    rebase ostree-unverified-registry:REF@DIGEST -> reboot -> wait for a new boot
    id -> verify the booted digest. A host that fails after its rebase is rolled
    back and rebooted, and both facts are reported. Every step is journalled.
    """
    inventory = load_inventory(inventory_path)
    hosts = inventory.select(host_names)
    target = resolve_target(reference, signed, tls_verify)
    fleetlock = (
        FleetLock(fleetlock_url if fleetlock_url.endswith("/") else fleetlock_url + "/", group)
        if fleetlock_url
        else None
    )
    options = RolloutOptions(
        batch,
        max_failures,
        not no_reboot,
        bypass_driver,
        disable_zincati,
        reboot_timeout,
        fleetlock,
    )
    earlier: list[HostReport] = []
    replay = None
    if resume_path:
        replay = read_journal(resume_path)
        if replay.header.get("target") != target.pinned:
            raise BadInputError(
                f"{resume_path} is a rollout of {replay.header.get('target')}, not {target.pinned}",
                "resume with the reference the journal was started with",
            )
        earlier = [
            _from_journal(h.name, replay.finished[h.name].data)
            for h in hosts
            if h.name in replay.finished
        ]
        hosts = tuple(h for h in hosts if h.name not in replay.finished)
        journal = Journal(resume_path)
        journal_path = resume_path
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        journal_path = journal_path or Path(f"nestcustom-deploy-{stamp}.jsonl")
    if dry_run:
        click.echo(f"target   {target.ostree_ref}")
        click.echo(f"hosts    {', '.join(h.name for h in hosts) or '(none left)'}")
        click.echo(
            f"batch    {batch}, stop after {max_failures} failure(s), "
            f"{'no reboot' if no_reboot else f'reboot (timeout {reboot_timeout:.0f} s)'}"
        )
        return
    if not resume_path:
        journal = Journal(
            journal_path,
            {
                "target": target.pinned,
                "hosts": [h.name for h in hosts],
                "options": {"batch": batch, "max_failures": max_failures, "reboot": not no_reboot},
            },
        )
    _err(f"deploying {target.pinned} to {len(hosts)} host(s); journal: {journal_path}")
    live = sys.stderr.isatty() and not settings.debug
    with (
        stop_on_signals() as stop,
        ssh_options(accept_new_host_keys) as ssh,
        _progress([h.name for h in hosts], live) as progress,
    ):
        reports = rollout(hosts, target, options, journal, ssh, progress.event, stop, replay)
    reports = earlier + reports
    _report(reports, as_json, {"target": target.pinned, "journal": str(journal_path)})
    if stop.is_set():
        _err(f"interrupted: finish with --resume {journal_path}")
        sys.exit(EXIT_INTERRUPTED)
    if any(not r.ok for r in reports):
        sys.exit(EXIT_FAILURE)


def _status_row(host: Host, ssh: SshOptions) -> dict[str, Any]:
    row: dict[str, Any] = {"host": host.name, "reachable": False}
    try:
        status = parse_status(Connection(host, ssh).run(["rpm-ostree", "status", "--json"]).stdout)
    except SshError as exc:
        row["error"] = exc.message.removeprefix(f"{host.name}: ")
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


@cli.command(
    epilog="""\b
Examples:
  nestcustom status -i hosts.yaml
  nestcustom status -i hosts.yaml --hosts canary --json
"""
)
@inventory_option
@hosts_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@accept_option
@click.pass_obj
@handle_errors
def status(
    settings: Settings,
    inventory_path: Path,
    host_names: tuple[str, ...],
    as_json: bool,
    accept_new_host_keys: bool,
) -> None:
    """One row per host: booted image and digest, version, staged, rollback, reachable."""
    hosts = load_inventory(inventory_path).select(host_names)
    with ssh_options(accept_new_host_keys) as ssh, ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(lambda h: _status_row(h, ssh), hosts))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            if not row["reachable"]:
                click.echo(f"{row['host']}: unreachable: {row['error']}")
                continue
            click.echo(f"{row['host']}: {row['booted']}  version {row['version']}")
            click.echo(
                f"  staged: {row['staged'] or '-'}  rollback: {row['rollback'] or '-'}"
                + ("  TRANSACTION RUNNING" if row["transaction"] else "")
                + (f"  driver: {row['update_driver']}" if row["update_driver"] else "")
            )
    if any(not row["reachable"] for row in rows):
        sys.exit(EXIT_FAILURE)


@cli.command(
    epilog="""\b
Examples:
  nestcustom rollback -i hosts.yaml --hosts web3
"""
)
@inventory_option
@hosts_option
@click.option(
    "--batch", type=click.IntRange(1, 256), default=1, show_default=True, help="Hosts at once."
)
@click.option("--reboot-timeout", type=click.FloatRange(10), default=600, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@accept_option
@click.pass_obj
@handle_errors
def rollback(
    settings: Settings,
    inventory_path: Path,
    host_names: tuple[str, ...],
    batch: int,
    reboot_timeout: float,
    as_json: bool,
    accept_new_host_keys: bool,
) -> None:
    """Boot hosts back into their previous deployment and verify they did."""
    hosts = load_inventory(inventory_path).select(host_names)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    journal = Journal(
        Path(f"nestcustom-rollback-{stamp}.jsonl"), {"rollback": [h.name for h in hosts]}
    )
    options = RolloutOptions(batch=batch, reboot_timeout=reboot_timeout)
    live = sys.stderr.isatty() and not settings.debug
    with (
        stop_on_signals() as stop,
        ssh_options(accept_new_host_keys) as ssh,
        _progress([h.name for h in hosts], live) as progress,
        ThreadPoolExecutor(batch) as pool,
    ):
        reports = list(
            pool.map(lambda h: rollback_host(h, ssh, options, journal, progress.event, stop), hosts)
        )
    _report(reports, as_json, {})
    if any(not r.ok for r in reports):
        sys.exit(EXIT_FAILURE)
