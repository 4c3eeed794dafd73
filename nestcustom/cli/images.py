"""Commands on images: build (and push), test."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nestcustom.cli import output
from nestcustom.cli.common import (
    Settings,
    err,
    exit_interrupted,
    handle_errors,
    live_display,
    print_problems,
    project_for,
)
from nestcustom.cli.supplychain import supply_chain
from nestcustom.containerfile.outputs import load_recipes, write_atomically
from nestcustom.errors import EXIT_FAILURE, NestcustomError
from nestcustom.recipe.model import DEFAULT_TAG, Recipe

if TYPE_CHECKING:  # the build modules pull in podman-py: imported where a command needs them
    from nestcustom.image.build import Built, Outcome
    from nestcustom.image.podman import BuildEvent


@click.command(
    epilog="""\b
Examples:
  nestcustom build recipes/nestos-strace.yaml
  nestcustom build recipes/*.yaml --jobs 2 --tag 127.0.0.1:5000/custom/{name}:latest --push
  nestcustom build recipes/host-agent.yaml --base 127.0.0.1:5000/mirror/nestos:22.03-LTS-SP3.20240110.0-x86_64
  nestcustom build recipes/nestos-kmod.yaml --mirror hub.oepkgs.net=registry.local:5000
  nestcustom build recipes/nestos-tools.yaml --download-mirror https://github.com/=https://artifacts.local/github/
  nestcustom build recipes/agent.yaml --secret id=repo-cred,src=$XDG_RUNTIME_DIR/repo-cred
Pushing prints REF@sha256:DIGEST per image: what `nestcustom deploy` takes.
"""
)
@click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--tag",
    "tag_template",
    default=DEFAULT_TAG,
    show_default=True,
    help="Image reference to tag; {name} is the recipe's name (needed for several recipes).",
)
@click.option("--push", is_flag=True, help="Push after a successful build and print the digest.")
@click.option("--no-cache", is_flag=True, help="Rebuild every step.")
@click.option(
    "--step-timeout",
    type=click.FloatRange(min=0, min_open=True, max=86400),
    metavar="SECONDS",
    help="Stop a step that runs longer and fail the build (overrides a recipe's step-timeout:).",
)
@click.option(
    "--tls-verify/--no-tls-verify",
    default=True,
    show_default=True,
    help="Verify the registry's TLS certificate (turn off only for a local test registry).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Recipes built at once.",
)
@click.option(
    "--base", "base_image", help="Build on this base instead of the recipe's (a mirror of it)."
)
@click.option(
    "--release-tags",
    is_flag=True,
    help="With --push: also tag VERSION.DATE.SERIAL and sha-COMMIT on the same digest.",
)
@click.option(
    "--mirror",
    "mirror_pairs",
    multiple=True,
    metavar="REGISTRY=MIRROR",
    help="Read REGISTRY's images (base, builder stages, files' from:) from MIRROR (repeatable).",
)
@click.option(
    "--download-mirror",
    "download_mirror_pairs",
    multiple=True,
    metavar="PREFIX=MIRROR",
    help="Fetch downloads whose URL starts with PREFIX from MIRROR instead (repeatable); "
    "their sha256 is checked as always.",
)
@click.option(
    "--secret",
    "secret_specs",
    multiple=True,
    metavar="id=ID,src=FILE",
    help="A build secret (USER:PASSWORD in FILE) for the repos and downloads whose secret: "
    "is ID; mounted for their steps only, never in a layer, the history or the log "
    "(repeatable).",
)
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(path_type=Path),
    metavar="KEY",
    help="With --push: push by digest, sign with this GPG key (simple signing), store the "
    "signature, and only then set the tag.",
)
@click.option(
    "--sign-passphrase-file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="The signing key's passphrase (first line); else asked on the terminal.",
)
@click.option(
    "--signature-store",
    metavar="URL",
    help="Where signatures go: file:///DIR (published by a web server) or an http(s) URL "
    "taking PUT; default: registries.d's lookaside-staging for the repository.",
)
@click.option(
    "--sbom",
    is_flag=True,
    help="With --push: push an SPDX SBOM next to the image (tag sha256-HEX.sbom), signed "
    "like the image when --sign is given.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "important", "moderate", "low"]),
    help="Fail a build whose image is exposed to a security advisory of this severity or "
    "higher (the repos' updateinfo.xml), before it is tagged.",
)
@click.option(
    "--advisory-repo",
    "advisory_repos",
    multiple=True,
    metavar="URL",
    help="With --fail-on: read advisories from this repository (repeatable); default: the "
    "image's enabled repositories.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.pass_obj
@handle_errors
def build(
    settings: Settings,
    recipes: tuple[Path, ...],
    tag_template: str,
    push: bool,
    no_cache: bool,
    step_timeout: float | None,
    tls_verify: bool,
    jobs: int,
    base_image: str | None,
    release_tags: bool,
    mirror_pairs: tuple[str, ...],
    download_mirror_pairs: tuple[str, ...],
    secret_specs: tuple[str, ...],
    sign_key: Path | None,
    sign_passphrase_file: Path | None,
    signature_store: str | None,
    sbom: bool,
    fail_on: str | None,
    advisory_repos: tuple[str, ...],
    as_json: bool,
) -> None:
    """Build recipes into images with podman, and optionally push them.

    Each step's output streams as it happens. An image is tagged only after
    its build succeeded, and a pushed reference is printed only once the
    registry serves exactly that image.
    """
    from nestcustom.cli.progress import LiveProgress, PlainProgress
    from nestcustom.image.build import BuildOptions, build_all
    from nestcustom.image.secrets import parse_secret, unused_secrets
    from nestcustom.recipe.mirrors import (
        parse_download_mirrors,
        parse_mirrors,
        with_download_mirrors,
        with_mirrors,
    )

    if release_tags and not push:
        raise click.UsageError("--release-tags goes with --push")
    if (sign_key or sbom) and not push:
        raise click.UsageError(f"{'--sign' if sign_key else '--sbom'} goes with --push")
    if (sign_passphrase_file or signature_store) and not sign_key:
        raise click.UsageError("--sign-passphrase-file and --signature-store go with --sign")
    if advisory_repos and not fail_on:
        raise click.UsageError("--advisory-repo goes with --fail-on")
    mirrors = parse_mirrors(mirror_pairs)
    download_mirrors = parse_download_mirrors(download_mirror_pairs)
    if len(recipes) > 1 and "{name}" not in tag_template:
        raise click.UsageError(
            "with several recipes, --tag needs {name} so each image gets its own tag"
        )
    project = project_for(settings, recipes[0])
    loaded = load_recipes(recipes, project)
    print_problems(w for item in loaded for w in item.warnings)
    chosen = [item.recipe for item in loaded]
    if base_image:  # before the mirrors, which cover it as they cover the recipe's own base
        chosen = [
            dataclasses.replace(r, base=dataclasses.replace(r.base, image=base_image, digest=None))
            for r in chosen
        ]
    chosen = [with_download_mirrors(with_mirrors(r, mirrors), download_mirrors) for r in chosen]
    secrets = tuple(parse_secret(spec) for spec in secret_specs)
    for warning in unused_secrets(chosen, secrets):
        err(f"warning: {warning}")
    options = BuildOptions(tag_template, push, tls_verify, no_cache, step_timeout, secrets)
    names = [r.name for r in chosen]
    display = LiveProgress(names) if live_display(settings) else PlainProgress()
    with supply_chain(
        sign_key, sign_passphrase_file, signature_store, sbom, fail_on, advisory_repos, tls_verify
    ) as extras:
        options = dataclasses.replace(options, **extras)
        with display:

            def listen(name: str, event: BuildEvent) -> None:
                display.event(name, event)

            outcomes = build_all(chosen, project, options, listen, jobs)
            for outcome in outcomes:
                up_to_date = outcome.built is not None and bool(outcome.built.up_to_date)
                display.finished(outcome.name, outcome.built is not None, up_to_date)
    extra_tags = _add_release_tags(outcomes, chosen, project, tls_verify) if release_tags else {}
    _report_builds(outcomes, as_json)
    failed = [o.name for o in outcomes if o.error]
    if as_json:
        failure = f"{len(failed)} of {len(outcomes)} build(s) failed: {', '.join(failed)}"
        output.emit_result(
            {"images": [_build_json(o, extra_tags.get(o.name, [])) for o in outcomes]},
            failure if failed else None,
        )
    if failed:
        sys.exit(EXIT_FAILURE)


@click.command(
    "test",
    epilog="""\b
Examples:
  nestcustom test recipes/nestos-strace.yaml --image localhost/nestcustom/nestos-strace:latest
  nestcustom test recipes/host-agent.yaml --image IMAGE --junit reports/host-agent.xml
""",
)
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option(
    "--image", required=True, help="The built image to check (a tag or ID in podman's storage)."
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a JUnit XML report.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
@handle_errors
def test_image(
    settings: Settings, recipe: Path, image: str, junit: Path | None, as_json: bool
) -> None:
    """Check a built image against its recipe, in a throwaway container.

    Runs the recipe's tests: section (packages, files, commands, units) and
    built-in checks: every installed package present, every removed one
    absent, nothing under /var that a NestOS host would drop. Exit 1 when a
    check fails.
    """
    from nestcustom.image.checks import CheckResult
    from nestcustom.image.verify import VerifyReport, junit_xml, verify_image

    loaded = load_recipes([recipe], project_for(settings, recipe))[0]
    results: list[CheckResult] = []

    def partial_report(error: str) -> None:
        """What ran before the run stopped, in the JUnit file (the JSON says it too)."""
        if junit:
            partial = VerifyReport(image, tuple(results))
            write_atomically(junit, junit_xml(partial, loaded.recipe.name, error))

    try:
        report = verify_image(loaded.recipe, image, results)
    except NestcustomError as exc:  # no such image, or no container could start
        partial_report(exc.message)
        raise
    except KeyboardInterrupt as exc:
        partial_report("interrupted before every check ran")
        exit_interrupted(exc, {"image": image, "results": [dataclasses.asdict(r) for r in results]})
    if junit:
        write_atomically(junit, junit_xml(report, loaded.recipe.name))
    failed = len(report.failures)
    if as_json:
        output.emit_result(
            {
                "recipe": loaded.recipe.name,
                "image": image,
                "passed": len(report.results) - failed,
                "failed": failed,
                "results": [dataclasses.asdict(r) for r in report.results],
            },
            f"{failed} check(s) failed" if failed else None,
        )
    else:
        for result in report.results:
            mark = (
                click.style("PASS", fg="green") if result.passed else click.style("FAIL", fg="red")
            )
            origin = " (built-in)" if result.builtin else ""
            detail = f": {result.detail}" if result.detail and not result.passed else ""
            click.echo(
                f"{mark}  {result.kind:8} {result.subject} {result.expectation}{origin}{detail}"
            )
        click.echo(f"{len(report.results) - failed} passed, {failed} failed")
    if failed:
        sys.exit(EXIT_FAILURE)


def _add_release_tags(
    outcomes: list[Outcome], recipes: list[Recipe], project: Path, tls_verify: bool
) -> dict[str, list[str]]:
    """The version and commit tags beside the pushed tag, all on the pushed digest."""
    from nestcustom.gitops.tags import add_tags, choose_tags

    added: dict[str, list[str]] = {}
    for outcome, recipe in zip(outcomes, recipes, strict=True):
        built = outcome.built
        if built is None or not built.digest:
            continue
        chosen = choose_tags(recipe, built.reference, built.digest, project, tls_verify)
        added[built.name] = add_tags(built.reference, built.digest, chosen.tags, tls_verify)
        for reference in added[built.name]:
            err(f"{built.name}: tagged {reference} ({built.digest[:19]})")
        if chosen.note:
            err(f"{built.name}: {chosen.note}")
    return added


def _report_builds(outcomes: list[Outcome], as_json: bool) -> None:
    """What each build did, on stderr; the pinned references on stdout (unless JSON)."""
    from nestcustom.image.updatecost import human_size

    for outcome in outcomes:
        if outcome.error:
            err(f"error: {outcome.error.message}")
            if outcome.error.hint:
                err(f"  hint: {outcome.error.hint}")
            for line in getattr(outcome.error, "output", ())[-8:]:
                err(f"  | {line}")
            continue
        built = outcome.built
        assert built is not None
        if built.up_to_date:
            where = "in the registry" if built.up_to_date == "registry" else "locally"
            err(
                f"{built.name}: up to date: {built.reference} ({built.image_id[:12]}) {where} "
                "was built from the same inputs; nothing built"
            )
            if built.pinned and not as_json:
                click.echo(built.pinned)
            continue
        cached = _cached_words(built)
        err(
            f"{built.name}: built {built.reference} ({built.image_id[:12]}, {built.layers} layers, "
            f"{built.size / 1e6:.0f} MB, {built.seconds:.1f} s{cached})"
        )
        if built.update is not None and built.update_from:
            cost = built.update
            err(
                f"{built.name}: update: a host on the image the tag named before "
                f"({built.update_from[:19]}) downloads {cost.layers} of {cost.of} layers, "
                f"{human_size(cost.size)} compressed"
            )
        if built.pinned and not as_json:
            click.echo(built.pinned)


def _cached_words(built: Built) -> str:
    """ ", 3/5 steps cached", or what a run that built nothing new really did."""
    steps, cached = len(built.step_names), len(built.cached_steps)
    if not built.step_seconds:  # no podman build ran: the image was there, only pushed
        return ", built before from the same inputs; pushed only"
    if cached >= steps:
        return f", every step ({steps}) from the cache"
    return f", {cached}/{steps} steps cached"


def _build_json(outcome: Outcome, extra_tags: list[str]) -> dict[str, object]:
    if outcome.error or outcome.built is None:
        return {
            "name": outcome.name,
            "ok": False,
            "error": {"message": outcome.error.message, "hint": outcome.error.hint}
            if outcome.error
            else None,
        }
    built = outcome.built
    return {
        "name": built.name,
        "ok": True,
        "reference": built.reference,
        "release_tags": extra_tags,
        "image_id": built.image_id,
        "digest": built.digest,
        "pinned": built.pinned,
        "up_to_date": built.up_to_date or None,
        "size": built.size,
        "layers": built.layers,
        "update": {
            "from": built.update_from,
            "layers": built.update.layers,
            "of": built.update.of,
            "bytes": built.update.size,
        }
        if built.update is not None
        else None,
        "seconds": round(built.seconds, 3),
        "steps": [
            {
                "step": i + 1,
                "name": n,
                "seconds": round(s, 3),
                "cached": (i + 1) in built.cached_steps,
            }
            for i, (n, s) in enumerate(zip(built.step_names, built.step_seconds, strict=False))
        ],
    }
