"""Commands on hosts: deploy, status, rollback. The work is in the deploy stage."""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nestcustom.cli import output
from nestcustom.cli.common import Settings, err, handle_errors, live_display
from nestcustom.errors import EXIT_FAILURE

if TYPE_CHECKING:
    from nestcustom.cli.progress import HostProgress
    from nestcustom.deploy.health import HealthChecks
    from nestcustom.deploy.report import HostReport, RolloutResult


def _progress(hosts: list[str], live: bool) -> HostProgress:
    from nestcustom.cli.progress import HostProgress  # rich is only needed once hosts are changed

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


def _report(
    reports: list[HostReport],
    as_json: bool,
    extra: dict[str, Any],
    exit_code: int = 0,
    error: dict[str, Any] | None = None,
) -> None:
    """The hosts' reports: text on stdout, or the run's one JSON document."""
    from nestcustom.deploy.report import text_lines

    counts = Counter(r.outcome for r in reports)
    if as_json:
        failed = [r.host for r in reports if not r.ok]
        if exit_code and error is None:
            error = {
                "kind": "failure",
                "message": f"{len(failed)} of {len(reports)} host(s) failed: {', '.join(failed)}",
                "hint": None,
            }
        output.emit(
            {**extra, "counts": dict(counts), "hosts": [dataclasses.asdict(r) for r in reports]},
            exit_code=exit_code,
            error=error,
        )
        return
    for line in text_lines(reports):
        click.echo(line)


@click.command(
    epilog="""\b
Examples:
  nestcustom deploy -i hosts.yaml registry.example.com/custom/nestos-debug@sha256:4e85...
  nestcustom deploy -i hosts.yaml registry.example.com/custom/nestos-debug:latest --batch 4 --max-failures 2
  nestcustom deploy -i hosts.yaml REF --hosts canary --dry-run
  nestcustom deploy -i hosts.yaml REF --resume nestcustom-deploy-20261124T091500Z-3f2a9c1e.jsonl
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
    "--signed",
    is_flag=True,
    help="Prove the image's signature on each host before its rebase, also when the image "
    "carries no signing policy for itself (it is proven by default when it does).",
)
@click.option(
    "--unsigned",
    is_flag=True,
    help="Do NOT check signatures, even where the image's signing policy asks for it (loudly).",
)
@click.option(
    "--bootstrap-trust",
    is_flag=True,
    help="Give hosts whose policy does not cover the image yet (no key to check with) this "
    "signed image unverified: it brings the policy and key; the report says so.",
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
@click.option(
    "--group",
    default="default",
    show_default=True,
    help="FleetLock group (Zincati's is 'default' unless its [identity] group says otherwise).",
)
@click.option(
    "--recipe",
    "recipe_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The image's recipe: after the reboot, also check on each host that the units it "
    "enables are active and its tests (packages, files, commands) pass; a failure rolls back.",
)
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
    help="Where to record each step (default: ./nestcustom-deploy-TIME-ID.jsonl, ID the rollout id's first 8 digits).",
)
@click.option(
    "--resume",
    "resume_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Finish an interrupted rollout from its journal; finished hosts are not redone.",
)
@click.option(
    "--take-over",
    "take_over",
    multiple=True,
    metavar="ROLLOUT_ID",
    help="Take over host locks a dead rollout left (its id is in the busy report; repeatable).",
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
    unsigned: bool,
    bootstrap_trust: bool,
    reboot_timeout: float,
    fleetlock_url: str | None,
    group: str,
    recipe_path: Path | None,
    tls_verify: bool,
    journal_path: Path | None,
    resume_path: Path | None,
    take_over: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    accept_new_host_keys: bool,
) -> None:
    """Rebase hosts to an image, reboot them, verify the booted digest, roll back on failure.

    Per host: preflight (status, transaction, Zincati, architecture, rpm-ostree
    version, host lock, what the host trusts) -> where the host's policy or the
    image's signing: asks for it, the signature proven on the host (skopeo
    standalone-verify) -> take the host lock, rpm-ostree rebase
    ostree-unverified-registry:REF@DIGEST (ostree-image-signed: where the host's
    skopeo enforces policy) -> reboot -> wait for a new boot id ->
    verify the booted digest and health (system running; with --recipe, its
    units active and its tests passing) -> release the lock. A host that fails
    after its rebase is rolled back (and rebooted if it booted the new image),
    and both facts are reported. Every step
    is journalled; --resume continues the same rollout with its recorded options.
    """
    from click.core import ParameterSource

    from nestcustom.deploy.fleetlock import FleetLock
    from nestcustom.deploy.hostrun import RolloutOptions
    from nestcustom.deploy.plan import RolloutRequest, plan_rollout, run_rollout

    context = click.get_current_context()
    explicit = frozenset(
        key
        for key, param in (
            ("batch", "batch"),
            ("max_failures", "max_failures"),
            ("reboot", "no_reboot"),
            ("bypass_driver", "bypass_driver"),
            ("disable_zincati", "disable_zincati"),
            ("reboot_timeout", "reboot_timeout"),
            ("fleetlock", "fleetlock_url"),
            ("group", "group"),
            ("health", "recipe_path"),
        )
        if context.get_parameter_source(param) is ParameterSource.COMMANDLINE
    )
    if no_reboot and resume_path is None:  # these act around the reboot, left to the host
        idle = [
            flag
            for key, flag in (
                ("fleetlock", "--fleetlock"),
                ("group", "--group"),
                ("reboot_timeout", "--reboot-timeout"),
                ("health", "--recipe"),
            )
            if key in explicit
        ]
        if idle:
            raise click.UsageError(
                f"{' and '.join(idle)} would do nothing with --no-reboot: it takes no slot, "
                "waits for no host and checks nothing (the new deployment boots at the "
                "host's next reboot, unwatched)"
            )
    # (a resumed rollout's FleetLock URL is the journal's: plan_rollout compares the rest)
    if "group" in explicit and not fleetlock_url and resume_path is None:
        raise click.UsageError("--group is a FleetLock group: it goes with --fleetlock URL")

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
        _health(settings, recipe_path),
    )
    request = RolloutRequest(
        inventory_path,
        reference,
        host_names,
        options,
        signed,
        tls_verify,
        journal_path,
        resume_path,
        explicit,
        take_over,
        unsigned,
        bootstrap_trust,
    )
    plan = plan_rollout(request)
    for warning in plan.warnings:
        err(warning)
    chosen = plan.options
    if dry_run and as_json:
        output.emit(
            {
                "dry_run": True,
                "rollout": plan.id,
                "target": plan.target.pinned,
                "ostree_ref": plan.target.ostree_ref,
                "hosts": [h.name for h in plan.hosts],
                "batch": chosen.batch,
                "max_failures": chosen.max_failures,
                "reboot": chosen.reboot,
                "reboot_timeout": chosen.reboot_timeout,
                "host_checks": [c.kind + " " + c.target for c in chosen.health.checks],
            }
        )
        return
    if dry_run:
        click.echo(f"target   {plan.target.ostree_ref}")
        click.echo(f"hosts    {', '.join(h.name for h in plan.hosts) or '(none left)'}")
        click.echo(
            f"batch    {chosen.batch}, stop after {chosen.max_failures} failure(s), "
            + (
                "no reboot"
                if not chosen.reboot
                else f"reboot (timeout {chosen.reboot_timeout:.0f} s)"
            )
        )
        checks = chosen.health.checks
        click.echo(
            "checks   system running"
            + (f", {len(checks)} from {chosen.health.source}" if checks else "")
        )
        return
    err(
        f"{'resuming' if resume_path else 'starting'} rollout {plan.id}: {plan.target.pinned} "
        f"to {len(plan.hosts)} host(s); journal: {plan.journal_path}"
    )
    with _progress([h.name for h in plan.hosts], live_display(settings)) as progress:
        result = run_rollout(plan, accept_new_host_keys, progress.event, _notice)
    _finish(
        result,
        as_json,
        {"rollout": plan.id, "target": plan.target.pinned, "journal": str(result.journal_path)},
        f"finish with --resume {result.journal_path}",
    )


def _health(settings: Settings, recipe_path: Path | None) -> HealthChecks:
    """The host checks of `--recipe` (none without it; the system state is always checked)."""
    from nestcustom.deploy.health import HealthChecks, from_recipe

    if recipe_path is None:
        return HealthChecks()
    from nestcustom.recipe.load import load_recipe

    loaded = load_recipe(recipe_path, settings.project)
    return from_recipe(loaded.recipe, str(recipe_path))


def _finish(result: RolloutResult, as_json: bool, extra: dict[str, Any], resume: str) -> None:
    """Report every host, then exit: 0, 1 when a host failed, 128+N when signal N stopped it."""
    reports = list(result.reports)
    code = EXIT_FAILURE if any(not r.ok for r in reports) else 0
    stopped: dict[str, Any] | None = None
    if result.stopped_by:
        code = 128 + signal.Signals[result.stopped_by].value
        err(f"interrupted by {result.stopped_by}: {resume}")
        stopped = {
            "kind": "interrupted",
            "message": f"interrupted by {result.stopped_by}",
            "hint": resume,
            "signal": result.stopped_by,
            # What the stop left, as every interrupted document says (cli/output.py).
            "state": f"{sum(r.ok for r in reports)} of {len(reports)} host(s) finished; "
            "each host's entry says where it stopped",
        }
    _report(reports, as_json, extra, code, stopped)
    if code:
        sys.exit(code)


def _notice(text: str) -> None:
    err("\n" + text)


@click.command(
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
    from nestcustom.deploy.fleetstatus import fleet_status
    from nestcustom.deploy.inventory import load_inventory

    inventory = load_inventory(inventory_path)
    for warning in inventory.warnings:
        err(warning)
    rows = fleet_status(inventory.select(host_names), accept_new_host_keys)
    unreachable = [row["host"] for row in rows if not row["reachable"]]
    if as_json:
        failure = f"{len(unreachable)} host(s) could not be read: {', '.join(unreachable)}"
        output.emit_result({"hosts": rows}, failure if unreachable else None)
    else:
        for row in rows:
            if not row["reachable"]:
                click.echo(
                    f"{row['host']}: {row['error']}"
                )  # says what failed: unreachable, auth, ...
                continue
            click.echo(f"{row['host']}: {row['booted']}  version {row['version']}")
            click.echo(
                f"  staged: {row['staged'] or '-'}  rollback: {row['rollback'] or '-'}"
                + ("  TRANSACTION RUNNING" if row["transaction"] else "")
                + (f"  driver: {row['update_driver']}" if row["update_driver"] else "")
                + f"  verified: {'yes' if row['verified'] else 'NO'} ({row['verification']})"
            )
    if unreachable:
        sys.exit(EXIT_FAILURE)


@click.command(
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
    from nestcustom.deploy.hostrun import RolloutOptions
    from nestcustom.deploy.inventory import load_inventory
    from nestcustom.deploy.plan import timestamp
    from nestcustom.deploy.rollback import run_rollback

    inventory = load_inventory(inventory_path)
    for warning in inventory.warnings:
        err(warning)
    hosts = inventory.select(host_names)
    options = RolloutOptions(batch=batch, reboot_timeout=reboot_timeout)
    journal_path = Path(f"nestcustom-rollback-{timestamp()}.jsonl")
    with _progress([h.name for h in hosts], live_display(settings)) as progress:
        result = run_rollback(
            hosts, options, journal_path, accept_new_host_keys, progress.event, _notice
        )
    _finish(
        result,
        as_json,
        {"journal": str(journal_path)},
        "run the rollback again for the hosts it did not reach",
    )
