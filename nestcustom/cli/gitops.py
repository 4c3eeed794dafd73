"""Commands for recipe repositories under git: init, matrix, plan, diff."""

from __future__ import annotations

from pathlib import Path

import click

from nestcustom.cli import output
from nestcustom.cli.common import (
    Settings,
    err,
    handle_errors,
    print_problems,
    project_for,
    show_path,
)
from nestcustom.containerfile.outputs import find_recipes, load_recipes, project_holding_recipes
from nestcustom.errors import BadInputError
from nestcustom.recipe.model import DEFAULT_TAG

tls_option = click.option(
    "--tls-verify/--no-tls-verify",
    default=True,
    show_default=True,
    help="Verify registries' TLS certificates (turn off only for a local test registry).",
)


@click.command(
    epilog="""\b
Examples:
  nestcustom init images
  nestcustom init images --registry registry.example.com/nestos --base hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0-x86_64
  nestcustom init . --force        # rewrite the scaffold's files in an existing repository
  nestcustom init images --install git+https://git.example.com/tools/nestcustom.git@v0.1.0
"""
)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--registry",
    default="registry.example.com/nestos",
    show_default=True,
    help="Where CI pushes the images: REGISTRY/NAME.",
)
@click.option("--base", default=None, help="The example recipe's base image.")
@click.option(
    "--default-branch", default="main", show_default=True, help="The branch CI publishes from."
)
@tls_option
@click.option(
    "--install",
    "install",
    metavar="SPEC",
    help="What the pipelines pip-install: nestcustom==VERSION (default: this version, from "
    "PyPI), a pinned git ref (git+https://HOST/nestcustom.git@REF) or a wheel URL "
    "(https://HOST/.../nestcustom-VERSION-py3-none-any.whl#sha256=...).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@handle_errors
def init(
    directory: Path,
    registry: str,
    base: str | None,
    default_branch: str,
    tls_verify: bool,
    install: str | None,
    force: bool,
) -> None:
    """Create a recipe repository: recipes, pipelines for GitLab CI and GitHub Actions.

    Writes recipes/example.yaml (commented), files/, containerfiles/ (rendered),
    schema/, a README, .gitignore, .pre-commit-config.yaml, .gitlab-ci.yml and
    .github/workflows/nestcustom.yml. The pipelines install this nestcustom
    version. Nothing is overwritten without --force.
    """
    from nestcustom.gitops.scaffold import (
        DEFAULT_BASE,
        DEFAULT_INSTALL,
        InitOptions,
        init_repository,
    )

    options = InitOptions(
        registry,
        base or DEFAULT_BASE,
        tls_verify,
        default_branch,
        force,
        install or DEFAULT_INSTALL,
    )
    written = init_repository(directory, options)
    for path in written:
        click.echo(f"wrote {show_path(directory / path)}")
    click.echo(f"{len(written)} file(s) written; next: cd {directory} && git init && git add -A")


@click.command(
    epilog="""\b
Examples:
  nestcustom matrix --changed-since origin/main
  nestcustom matrix --changed-since "$CI_MERGE_REQUEST_DIFF_BASE_SHA" --format gitlab > matrix.env
  nestcustom matrix --changed-since "${{ github.event.before }}" --format github >> "$GITHUB_OUTPUT"
"""
)
@click.option(
    "--changed-since",
    "since",
    metavar="REV",
    help="A git revision; without it (or when git does not know it) every recipe.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "github", "gitlab"]),
    default="json",
    show_default=True,
    help="json: recipes and why; github: GITHUB_OUTPUT lines; gitlab: a dotenv report.",
)
@click.pass_obj
@handle_errors
def matrix(settings: Settings, since: str | None, fmt: str) -> None:
    """The recipes a change touches: what CI builds.

    A recipe is in it when the recipe, a fragment it includes, a file it
    copies, a script it runs, a kernel-module file or its base reference
    changed since REV (committed or not, counted from the merge base with HEAD).
    """
    from nestcustom.gitops.changes import change_matrix, format_matrix, matrix_document

    project = _project(settings)
    loaded = load_recipes(find_recipes(project / "recipes"), project)
    result = change_matrix([item.recipe for item in loaded], project, since)
    if result.note and since:
        err(f"note: {result.note}: every recipe is in the matrix")
    if fmt == "json":
        output.emit(matrix_document(result))
    else:
        click.echo(format_matrix(result, fmt), nl=False)


@click.command(
    epilog="""\b
Examples:
  nestcustom plan recipes/nestos-strace.yaml
  nestcustom plan recipes/nestos-strace.yaml --against registry.example.com/nestos/nestos-strace:latest
"""
)
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--against", "image", help=f"The image to compare with (default: {DEFAULT_TAG}).")
@tls_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
@click.pass_obj
@handle_errors
def plan(
    settings: Settings, recipe: Path, image: str | None, tls_verify: bool, as_json: bool
) -> None:
    """Which build steps re-run and which stay cached, and why.

    Compares content keys of each step's inputs (instruction, the files it
    reads, the base image) with those of the build that made IMAGE (rebuilt
    from the commit its revision label names and checked against its input
    digest, the one `build` uses to skip unchanged images).
    """
    from nestcustom.gitops.plan import plan_build

    project = project_for(settings, recipe)
    loaded = load_recipes([recipe], project)[0]
    print_problems(loaded.warnings)
    against = image or DEFAULT_TAG.replace("{name}", loaded.recipe.name)
    result = plan_build(loaded.recipe, project, against, tls_verify)
    if as_json:
        output.emit(
            {
                "recipe": loaded.recipe.name,
                "against": against,
                "inputs_digest": result.digest,
                "up_to_date": result.up_to_date,
                "rerun": result.rerun,
                "note": result.note or None,
                "steps": [
                    {
                        "step": s.index,
                        "name": s.name,
                        "cached": s.cached,
                        "reason": s.reason or None,
                    }
                    for s in result.steps
                ],
            }
        )
        return
    if result.up_to_date:
        click.echo(
            f"{loaded.recipe.name}: up to date: {against} was built from these inputs; "
            "`build` builds nothing"
        )
        return
    for step in result.steps:
        mark = "cached" if step.cached else "re-run"
        click.echo(
            f"{step.index:3} {mark:7} {step.name}" + (f": {step.reason}" if step.reason else "")
        )
    if result.note:
        err(f"note: {result.note}")
    click.echo(f"{result.rerun} of {len(result.steps)} step(s) re-run")


@click.command(
    epilog="""\b
Examples:
  nestcustom diff registry.example.com/nestos/web:latest localhost/nestcustom/web:latest
  nestcustom diff docker://REGISTRY/web:latest containers-storage:REGISTRY/web:latest --format markdown
  nestcustom diff recipes/web.yaml ../main/recipes/web.yaml
Images: containers-storage:REF (local storage), docker://REF (registry), or a bare REF
(local storage when podman has it, else the registry).
"""
)
@click.argument("old")
@click.argument("new")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
)
@tls_option
@click.pass_obj
@handle_errors
def diff(settings: Settings, old: str, new: str, fmt: str, tls_verify: bool) -> None:
    """Packages added, removed, upgraded and downgraded from OLD to NEW.

    For images, the RPM databases are read out of the image layers (only the
    layers that hold them are downloaded from a registry; no container runs),
    upgrades come with their changelog entries, and the layers are counted.
    For recipes, what they ask to install and remove is compared.
    """
    from nestcustom.gitops import diffreport
    from nestcustom.gitops.diff import check_same_kind, diff_images, diff_recipe_files

    if check_same_kind(old, new):
        result = diff_recipe_files(Path(old), Path(new), settings.project)
        if fmt == "json":
            output.emit(diffreport.recipe_document(result, old, new))
            return
        render = {"text": diffreport.recipe_text, "markdown": diffreport.recipe_markdown}[fmt]
        click.echo(render(result, old, new), nl=False)
        return
    images = diff_images(old, new, tls_verify)
    if fmt == "json":
        output.emit(diffreport.image_document(images))
        return
    show = {"text": diffreport.image_text, "markdown": diffreport.image_markdown}[fmt]
    click.echo(show(images), nl=False)


def _project(settings: Settings) -> Path:
    if settings.project:
        return settings.project.resolve()
    found = project_holding_recipes(Path.cwd())
    if found is None:
        raise BadInputError(
            "no recipes/ directory here or above",
            "run in a recipe repository, or pass --project DIR",
        )
    return found
