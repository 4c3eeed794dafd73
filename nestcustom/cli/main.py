"""The `nestcustom` command group: global options, and every command registered on it.

Exit codes: 0 ok, 1 failure, 2 bad input or usage, 130 interrupted. The
commands live in one module per family (recipes, images, hosts); this module
imports them, never the other way round.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from nestcustom import __version__
from nestcustom.cli import base, hosts, images, recipes
from nestcustom.cli.common import Settings, err
from nestcustom.errors import EXIT_INTERRUPTED


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  nestcustom validate recipes/*.yaml
  nestcustom render recipes/nestos-strace.yaml
  nestcustom render --all --check
  nestcustom build recipes/*.yaml --tag 127.0.0.1:5000/custom/{name}:latest --push
  nestcustom deploy -i hosts.yaml 127.0.0.1:5000/custom/nestos-strace@sha256:...
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


for command in (
    recipes.validate,
    recipes.render,
    recipes.schema,
    images.build,
    images.test_image,
    hosts.deploy,
    hosts.status,
    hosts.rollback,
    base.base,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli(prog_name="nestcustom")
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(EXIT_INTERRUPTED)
