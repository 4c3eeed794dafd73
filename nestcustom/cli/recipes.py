"""Commands on recipes: validate, render, schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nestcustom.cli import output
from nestcustom.cli.common import (
    Settings,
    err,
    handle_errors,
    print_problems,
    show_path,
)
from nestcustom.containerfile.outputs import (
    DriftKind,
    find_drift,
    find_recipes,
    load_recipes,
    plan_outputs,
    project_holding_recipes,
    write_atomically,
    write_outputs,
)
from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import EXIT_BAD_INPUT, EXIT_FAILURE, NestcustomError, RecipeError, Severity
from nestcustom.recipe.load import find_project_root
from nestcustom.recipe.reference import schema_markdown
from nestcustom.recipe.schema import recipe_schema


@click.command(
    epilog="""\b
Examples:
  nestcustom validate recipes/*.yaml
  nestcustom validate --strict --json recipes/host-agent.yaml
"""
)
@click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document: the problems, located."
)
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
    errors = sum(p.severity is Severity.ERROR for p in problems)
    warnings = len(problems) - errors
    summary = f"{errors} error(s), {warnings} warning(s) in {len(recipes)} recipe(s)"
    if as_json:
        output.emit(
            {"recipes": len(recipes), "problems": [p.as_json() for p in problems]},
            exit_code=EXIT_BAD_INPUT if failed else 0,
            error={"kind": "bad-input", "message": summary, "hint": None} if failed else None,
        )
    else:
        print_problems(problems)
        if failed:
            err(summary)
        else:
            suffix = f" ({warnings} warning(s))" if warnings else ""
            click.echo(f"{len(recipes)} recipe(s) valid{suffix}")
    if failed:
        sys.exit(EXIT_BAD_INPUT)


@click.command(
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
    help="Write the Containerfile (and the files it COPYs) here instead of stdout ('-': stdout).",
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
    # The project is the build context: never the current directory by accident.
    if settings.project:
        project = settings.project.resolve()
    elif recipes_dir:
        project = find_project_root(recipes_dir.resolve() / "recipe.yaml")
    else:
        project = project_holding_recipes(Path.cwd()) or Path.cwd().resolve()
    recipes = find_recipes(recipes_dir or project / "recipes")
    loaded = load_recipes(recipes, project)
    plan = plan_outputs(loaded, project, (out_dir or project / "containerfiles").resolve())
    print_problems(plan.warnings)
    if check:
        drift = find_drift(plan)
        for item in drift:
            err(f"{show_path(item.path)}: {item.kind.value}")
        if drift:
            err(f"{len(drift)} file(s) out of date: run `nestcustom render --all` and commit")
            sys.exit(EXIT_FAILURE)
        click.echo(f"{len(loaded)} recipe(s): containerfiles are up to date")
        return
    changes = write_outputs(plan)
    for item in changes:
        verb = "removed" if item.kind is DriftKind.ORPHAN else "wrote"
        click.echo(f"{verb} {show_path(item.path)}")
    click.echo(f"{len(loaded)} recipe(s) rendered, {len(changes)} file(s) changed")


def _render_one(settings: Settings, recipe: Path, output: Path | None) -> None:
    project = (settings.project or find_project_root(recipe)).resolve()
    loaded = load_recipes([recipe], project)[0]
    print_problems(loaded.warnings)
    if output is None or str(output) == "-":  # `-o -`: stdout, as everywhere else
        rendering = render_containerfile(loaded.recipe, "containerfiles/" + loaded.recipe.name)
        if rendering.files:
            err("note: this Containerfile COPYs generated files; write them with -o FILE or --all")
        click.echo(rendering.containerfile, nl=False)
        return
    target = output.resolve()
    if not target.parent.is_relative_to(project):
        raise NestcustomError(
            f"{output}: outside the project directory {project}",
            "the project is the build context: write the Containerfile inside it",
        )
    # One recipe written to a file of the user's choosing: its generated files, the
    # build helper too, go beside it.
    where = target.parent.relative_to(project).as_posix()
    rendering = render_containerfile(loaded.recipe, where, shared_dir=where)
    write_atomically(target, rendering.containerfile)
    for generated in rendering.files:
        write_atomically(project / generated.path, generated.content)
    click.echo(f"wrote {show_path(target)}")


@click.command(
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
