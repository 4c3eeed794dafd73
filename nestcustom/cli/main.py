"""The `nestcustom` command group: global options, and every command registered on it.

Exit codes: 0 ok, 1 failure, 2 bad input or usage, 130 interrupted by SIGINT,
143 by SIGTERM. The commands live in one module per family (recipes, images,
hosts); this module names them in COMMANDS and imports a command's module
only when that command runs (or for --help): `nestcustom --version` never
loads jsonschema or podman-py. Stop signals are caught from the first line
of `main`, so a Ctrl-C while Python is still importing exits quietly.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click

# Every command: its name and where it lives ("module:attribute"). Add new commands here.
COMMANDS: dict[str, str] = {
    "validate": "nestcustom.cli.recipes:validate",
    "render": "nestcustom.cli.recipes:render",
    "schema": "nestcustom.cli.recipes:schema",
    "build": "nestcustom.cli.images:build",
    "test": "nestcustom.cli.images:test_image",
    "deploy": "nestcustom.cli.hosts:deploy",
    "status": "nestcustom.cli.hosts:status",
    "rollback": "nestcustom.cli.hosts:rollback",
    "base": "nestcustom.cli.base:base",
    "init": "nestcustom.cli.gitops:init",
    "matrix": "nestcustom.cli.gitops:matrix",
    "plan": "nestcustom.cli.gitops:plan",
    "diff": "nestcustom.cli.gitops:diff",
    "keys": "nestcustom.cli.supply:keys",
    "sbom": "nestcustom.cli.supply:sbom",
    "advisories": "nestcustom.cli.supply:advisories",
    "fleetlock": "nestcustom.cli.fleet:fleetlock",
    "fleet": "nestcustom.cli.fleet:fleet",
    "promote": "nestcustom.cli.fleet:promote",
}

_EPILOG = """\b
Examples:
  nestcustom validate recipes/*.yaml
  nestcustom render recipes/nestos-strace.yaml
  nestcustom render --all --check
  nestcustom build recipes/*.yaml --tag 127.0.0.1:5000/custom/{name}:latest --push
  nestcustom deploy -i hosts.yaml 127.0.0.1:5000/custom/nestos-strace@sha256:...
"""


def load_command(name: str) -> click.Command:
    import importlib

    module, _, attribute = COMMANDS[name].partition(":")
    command: click.Command = getattr(importlib.import_module(module), attribute)
    return command


def make_cli() -> click.Group:
    """The click group, its commands loaded on first use."""
    import logging
    from pathlib import Path

    import click

    from nestcustom import __version__
    from nestcustom.cli.common import Settings

    class LazyGroup(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return list(COMMANDS)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            return load_command(cmd_name) if cmd_name in COMMANDS else None

    @click.group(
        cls=LazyGroup,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        epilog=_EPILOG,
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

    return cli


def __getattr__(name: str) -> Any:  # `from nestcustom.cli.main import cli` still works
    if name == "cli":
        return make_cli()
    raise AttributeError(name)


class _Stopped(KeyboardInterrupt):
    """A stop signal before proc's handler is in place; carries the signal (143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)  # until proc's handler (which also says which signal) is in place


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        from nestcustom.cli import output

        output.request_from_argv(sys.argv[1:])
        from nestcustom.proc import raise_on_stop_signals

        raise_on_stop_signals()
        _run(make_cli())
    except KeyboardInterrupt as exc:
        from nestcustom.cli.common import exit_interrupted

        exit_interrupted(exc)


def _run(cli: click.Group) -> None:
    """What click's main() does, except Ctrl-C: click would print "Aborted!" and exit 1.

    Usage errors found while parsing (before any command runs) get their JSON
    document here when the command line asked for one.
    """
    import click

    from nestcustom.cli import output

    try:
        with cli.make_context("nestcustom", sys.argv[1:]) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # a prompt's EOF; nestcustom has none today
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        output.emit_error(
            exc.exit_code,
            "usage" if isinstance(exc, click.UsageError) else "failure",
            exc.format_message(),
        )
        sys.exit(exc.exit_code)
    sys.exit(0)
