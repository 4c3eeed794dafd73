"""Command line: parse options, call a step, print, map errors to exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input or usage, 130 interrupted.
Nothing else in the package prints or exits.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from nestcustom import __version__
from nestcustom.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    NestcustomError,
    Problem,
    RecipeError,
    Severity,
)
from nestcustom.model import DEFAULT_TAG
from nestcustom.outputs import (
    DriftKind,
    find_drift,
    find_recipes,
    load_recipes,
    plan_outputs,
    write_atomically,
    write_outputs,
)
from nestcustom.recipe import find_project_root
from nestcustom.render import render_containerfile
from nestcustom.schema import recipe_schema
from nestcustom.schemadoc import schema_markdown

if TYPE_CHECKING:  # the build modules pull in podman-py: imported where a command needs them
    from nestcustom.build import Outcome
    from nestcustom.podman import BuildEvent

F = TypeVar("F", bound=Callable[..., Any])


class Settings:
    """Options of the top-level command, shared with every sub-command."""

    def __init__(self, debug: bool, project: Path | None) -> None:
        self.debug = debug
        self.project = project


def _err(text: str) -> None:
    click.echo(text, err=True)


def print_problems(problems: Iterable[Problem]) -> None:
    color = sys.stderr.isatty()
    for problem in problems:
        text = problem.format()
        if color:
            tint = "red" if problem.severity is Severity.ERROR else "yellow"
            head, _, rest = text.partition("\n")
            text = click.style(head, fg=tint) + ("\n" + rest if rest else "")
        _err(text)


def handle_errors(func: F) -> F:
    """Turn project errors, Ctrl-C and surprises into messages and exit codes."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings = click.get_current_context().find_object(Settings)
        debug = settings.debug if settings else False
        try:
            return func(*args, **kwargs)
        except RecipeError as exc:
            print_problems(exc.problems)
            errors = sum(p.severity is Severity.ERROR for p in exc.problems)
            _err(f"{errors} error{'s' if errors != 1 else ''}; nothing was written")
            sys.exit(exc.exit_code)
        except NestcustomError as exc:
            _err(f"error: {exc.message}")
            if exc.hint:
                _err(f"  hint: {exc.hint}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            _err("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
            if debug:
                traceback.print_exc()
            _err(f"internal error: {type(exc).__name__}: {exc}")
            _err("  hint: rerun with --debug for the traceback, and report it")
            sys.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  nestcustom validate recipes/*.yaml
  nestcustom render recipes/nestos-strace.yaml
  nestcustom render --all --check
""",
)
@click.version_option(__version__, prog_name="nestcustom")
@click.option("--debug", is_flag=True, help="Log every external command and show tracebacks.")
@click.option(
    "--project",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Project root: the build context, and what recipe paths are relative to. "
    "Default: the directory holding recipes/.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, project: Path | None) -> None:
    """Build customised NestOS (and NewStart) images from YAML recipes.

    A recipe names a base image and layers of package changes; nestcustom
    validates it, renders it to a Containerfile whose every RUN ends in
    `ostree container commit`, builds it with podman and deploys it.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    ctx.obj = Settings(debug, project)


@cli.command(
    epilog="""\b
Examples:
  nestcustom validate recipes/*.yaml
  nestcustom validate --strict --json recipes/host-agent.yaml
"""
)
@click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON list.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.pass_obj
@handle_errors
def validate(settings: Settings, recipes: tuple[Path, ...], as_json: bool, strict: bool) -> None:
    """Check recipes against the schema and the NestOS rules.

    Every problem in every file is reported at once as FILE:LINE:COL: PATH:
    MESSAGE, with a hint. Exit 0 when valid, 2 when any error is found.
    """
    try:
        loaded = load_recipes(recipes, settings.project)
        problems = [w for item in loaded for w in item.warnings]
    except RecipeError as exc:
        problems = exc.problems
    failed = any(p.severity is Severity.ERROR or strict for p in problems)
    if as_json:
        click.echo(json.dumps([p.as_json() for p in problems], indent=2))
    else:
        print_problems(problems)
        errors = sum(p.severity is Severity.ERROR for p in problems)
        warnings = len(problems) - errors
        if failed:
            _err(f"{errors} error(s), {warnings} warning(s) in {len(recipes)} recipe(s)")
        else:
            suffix = f" ({warnings} warning(s))" if warnings else ""
            click.echo(f"{len(recipes)} recipe(s) valid{suffix}")
    if failed:
        sys.exit(EXIT_BAD_INPUT)


@cli.command(
    epilog="""\b
Examples:
  nestcustom render recipes/nestos-strace.yaml
  nestcustom render recipes/host-agent.yaml -o build/Containerfile
  nestcustom render --all                 # recipes/*.yaml -> containerfiles/<name>/
  nestcustom render --all --check         # in CI: exit 1 if containerfiles/ is stale
"""
)
@click.argument("recipe", required=False, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Containerfile (and generated repo file) here instead of stdout.",
)
@click.option(
    "--all", "render_all", is_flag=True, help="Render every recipe in --recipes into --out."
)
@click.option(
    "--recipes",
    "recipes_dir",
    type=click.Path(path_type=Path),
    help="Directory of recipes for --all (default: PROJECT/recipes).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Output directory for --all (default: PROJECT/containerfiles).",
)
@click.option(
    "--check",
    is_flag=True,
    help="With --all: change nothing; exit 1 naming every stale, missing or orphaned file.",
)
@click.pass_obj
@handle_errors
def render(
    settings: Settings,
    recipe: Path | None,
    output: Path | None,
    render_all: bool,
    recipes_dir: Path | None,
    out_dir: Path | None,
    check: bool,
) -> None:
    """Render a recipe to a Containerfile, or every recipe into containerfiles/.

    Rendering is deterministic: the same recipe always gives the same bytes,
    so the rendered files can be committed and reviewed.
    """
    if render_all == (recipe is not None):
        raise click.UsageError("give either a RECIPE or --all")
    if check and not render_all:
        raise click.UsageError("--check goes with --all")
    if recipe is not None:
        _render_one(settings, recipe, output)
        return
    project = (settings.project or Path.cwd()).resolve()
    recipes = find_recipes(recipes_dir or project / "recipes")
    loaded = load_recipes(recipes, settings.project)
    plan = plan_outputs(loaded, project, (out_dir or project / "containerfiles").resolve())
    print_problems(plan.warnings)
    if check:
        drift = find_drift(plan)
        for item in drift:
            _err(f"{_show(item.path)}: {item.kind.value}")
        if drift:
            _err(f"{len(drift)} file(s) out of date: run `nestcustom render --all` and commit")
            sys.exit(EXIT_FAILURE)
        click.echo(f"{len(loaded)} recipe(s): containerfiles are up to date")
        return
    changes = write_outputs(plan)
    for item in changes:
        verb = "removed" if item.kind is DriftKind.ORPHAN else "wrote"
        click.echo(f"{verb} {_show(item.path)}")
    click.echo(f"{len(loaded)} recipe(s) rendered, {len(changes)} file(s) changed")


def _render_one(settings: Settings, recipe: Path, output: Path | None) -> None:
    project = (settings.project or find_project_root(recipe)).resolve()
    loaded = load_recipes([recipe], project)[0]
    print_problems(loaded.warnings)
    if output is None:
        rendering = render_containerfile(loaded.recipe, "containerfiles/" + loaded.recipe.name)
        if rendering.files:
            _err("note: this Containerfile COPYs generated files; write them with -o FILE or --all")
        click.echo(rendering.containerfile, nl=False)
        return
    target = output.resolve()
    if not target.parent.is_relative_to(project):
        raise NestcustomError(
            f"{output}: outside the project directory {project}",
            "the project is the build context: write the Containerfile inside it",
        )
    rendering = render_containerfile(loaded.recipe, target.parent.relative_to(project).as_posix())
    write_atomically(target, rendering.containerfile)
    for generated in rendering.files:
        write_atomically(target.parent / generated.name, generated.content)
    click.echo(f"wrote {_show(target)}")


@cli.command(
    epilog="""\b
Examples:
  nestcustom schema > recipe.schema.json
  nestcustom schema --format markdown      # the recipe reference
Editors: put this first line in a recipe for completion and checks:
  # yaml-language-server: $schema=./recipe.schema.json
"""
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "markdown"]),
    default="json",
    show_default=True,
    help="JSON Schema, or the reference as Markdown.",
)
@handle_errors
def schema(fmt: str) -> None:
    """Print the recipe JSON Schema, the single definition of the recipe language."""
    if fmt == "json":
        click.echo(json.dumps(recipe_schema(), indent=2))
    else:
        click.echo(schema_markdown(recipe_schema()), nl=False)


@cli.command(
    epilog="""\b
Examples:
  nestcustom build recipes/nestos-strace.yaml
  nestcustom build recipes/*.yaml --jobs 2 --tag 127.0.0.1:5000/custom/{name}:latest --push
  nestcustom build recipes/host-agent.yaml --base 127.0.0.1:5000/mirror/nestos:22.03-LTS-SP3.20240110.0-x86_64
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
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.pass_obj
@handle_errors
def build(
    settings: Settings,
    recipes: tuple[Path, ...],
    tag_template: str,
    push: bool,
    no_cache: bool,
    tls_verify: bool,
    jobs: int,
    base_image: str | None,
    as_json: bool,
) -> None:
    """Build recipes into images with podman, and optionally push them.

    Each step's output streams as it happens. An image is tagged only after
    its build succeeded, and a pushed reference is printed only once the
    registry serves exactly that image.
    """
    from nestcustom import podman as podman_api
    from nestcustom.build import BuildOptions, build_all
    from nestcustom.progress import LiveProgress, PlainProgress

    if len(recipes) > 1 and "{name}" not in tag_template:
        raise click.UsageError(
            "with several recipes, --tag needs {name} so each image gets its own tag"
        )
    project = _project_for(settings, recipes[0])
    loaded = load_recipes(recipes, project)
    print_problems(w for item in loaded for w in item.warnings)
    chosen = [item.recipe for item in loaded]
    if base_image:
        chosen = [
            dataclasses.replace(r, base=dataclasses.replace(r.base, image=base_image, digest=None))
            for r in chosen
        ]
    options = BuildOptions(tag_template, push, tls_verify, no_cache)
    names = [r.name for r in chosen]
    display = LiveProgress(names) if sys.stderr.isatty() and not settings.debug else PlainProgress()
    with podman_api.connect() as podman, display:

        def listen(name: str, event: BuildEvent) -> None:
            display.event(name, event)

        outcomes = build_all(podman, chosen, project, options, listen, jobs)
        for outcome in outcomes:
            display.finished(outcome.name, outcome.built is not None)
    _report_builds(outcomes, as_json)
    if any(o.error for o in outcomes):
        sys.exit(EXIT_FAILURE)


@cli.command(
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
    from nestcustom.verify import junit_xml, verify_image  # testinfra is slow to import

    loaded = load_recipes([recipe], _project_for(settings, recipe))[0]
    report = verify_image(loaded.recipe, image)
    if junit:
        write_atomically(junit, junit_xml(report, loaded.recipe.name))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in report.results], indent=2))
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
        failed = sum(not r.passed for r in report.results)
        click.echo(f"{len(report.results) - failed} passed, {failed} failed")
    if not report.passed:
        sys.exit(EXIT_FAILURE)


def _report_builds(outcomes: list[Outcome], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([_build_json(o) for o in outcomes], indent=2))
    for outcome in outcomes:
        if outcome.error:
            _err(f"error: {outcome.error.message}")
            if outcome.error.hint:
                _err(f"  hint: {outcome.error.hint}")
            for line in getattr(outcome.error, "output", ())[-8:]:
                _err(f"  | {line}")
            continue
        built = outcome.built
        assert built is not None
        cached = f", {len(built.cached_steps)}/{len(built.step_names)} steps cached"
        _err(
            f"{built.name}: built {built.reference} ({built.image_id[:12]}, {built.layers} layers, "
            f"{built.size / 1e6:.0f} MB, {built.seconds:.1f} s{cached})"
        )
        if built.pinned and not as_json:
            click.echo(built.pinned)


def _build_json(outcome: Outcome) -> dict[str, object]:
    if outcome.error or outcome.built is None:
        return {
            "name": outcome.name,
            "ok": False,
            "error": outcome.error.message if outcome.error else None,
        }
    built = outcome.built
    return {
        "name": built.name,
        "ok": True,
        "reference": built.reference,
        "image_id": built.image_id,
        "digest": built.digest,
        "pinned": built.pinned,
        "size": built.size,
        "layers": built.layers,
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


def _project_for(settings: Settings, recipe: Path) -> Path:
    return (settings.project or find_project_root(recipe)).resolve()


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> None:
    try:
        cli(prog_name="nestcustom")
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(EXIT_INTERRUPTED)


# Host commands live in their own module; importing it registers them on `cli`.
from nestcustom import cli_deploy  # noqa: E402, F401
