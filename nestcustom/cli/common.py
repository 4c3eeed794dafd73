"""What every command shares: the global settings, problem printing, error -> exit code.

Nothing below the CLI prints or exits: stages raise a `NestcustomError` with a
message and a hint, and `handle_errors` turns it into text on stderr and the
exit code its class names (0 ok, 1 failure, 2 bad input or usage, 130
interrupted by SIGINT, 143 by SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from nestcustom.cli import output
from nestcustom.errors import (
    EXIT_FAILURE,
    NestcustomError,
    Problem,
    RecipeError,
    Severity,
)

F = TypeVar("F", bound=Callable[..., Any])


class Settings:
    """Options of the top-level command, shared with every sub-command."""

    def __init__(self, debug: bool, project: Path | None) -> None:
        self.debug = debug
        self.project = project


def err(text: str) -> None:
    click.echo(text, err=True)


def print_problems(problems: Iterable[Problem]) -> None:
    color = sys.stderr.isatty()
    for problem in problems:
        text = problem.format()
        if color:
            tint = "red" if problem.severity is Severity.ERROR else "yellow"
            head, _, rest = text.partition("\n")
            text = click.style(head, fg=tint) + ("\n" + rest if rest else "")
        err(text)


def handle_errors(func: F) -> F:
    """Turn project errors, Ctrl-C and surprises into messages and exit codes.

    In JSON mode each path also writes the run's one document (cli/output.py).
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        settings = ctx.find_object(Settings)
        debug = settings.debug if settings else False
        command = ctx.command_path.partition(" ")[2] or ctx.command_path
        output.begin(command, bool(kwargs.get("as_json")) or kwargs.get("fmt") == "json")
        try:
            return func(*args, **kwargs)
        except RecipeError as exc:
            print_problems(exc.problems)
            errors = sum(p.severity is Severity.ERROR for p in exc.problems)
            err(f"{errors} error{'s' if errors != 1 else ''}; nothing was written")
            output.emit_error(
                exc.exit_code,
                "bad-input",
                exc.message,
                exc.hint,
                problems=[p.as_json() for p in exc.problems],
            )
            sys.exit(exc.exit_code)
        except NestcustomError as exc:
            err(f"error: {exc.message}")
            if exc.hint:
                err(f"  hint: {exc.hint}")
            output.emit_error(
                exc.exit_code,
                output.KIND_BY_EXIT.get(exc.exit_code, "failure"),
                exc.message,
                exc.hint,
            )
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            output.emit_error(exc.exit_code, "usage", exc.format_message())
            raise
        except KeyboardInterrupt as exc:
            exit_interrupted(exc)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
            if debug:
                traceback.print_exc()
            err(f"internal error: {type(exc).__name__}: {exc}")
            err("  hint: rerun with --debug for the traceback, and report it")
            output.emit_error(EXIT_FAILURE, "internal", f"{type(exc).__name__}: {exc}")
            sys.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def exit_interrupted(exc: BaseException, payload: dict[str, Any] | None = None) -> NoReturn:
    """One line saying which signal stopped the command and what it left; exit 128+N.

    `Interrupted` (proc) says the signal; a bare KeyboardInterrupt is Ctrl-C.
    """
    from nestcustom.proc import stop_signal_of

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the exit is under way: one line, no traceback
    signum, state = stop_signal_of(exc)
    name = signal.Signals(signum).name
    err(f"interrupted by {name}" + (f": {state}" if state else ""))
    output.emit_error(
        128 + signum,
        "interrupted",
        f"interrupted by {name}",
        None,
        payload,
        signal=name,
        state=state,
    )
    sys.exit(128 + signum)


def project_for(settings: Settings, recipe: Path) -> Path:
    from nestcustom.recipe.load import find_project_root

    return (settings.project or find_project_root(recipe)).resolve()


def show_path(path: Path) -> str:
    """A path as the user would type it: relative to the current directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def live_display(settings: Settings) -> bool:
    """A redrawing display on a terminal; plain lines in logs and with --debug."""
    return sys.stderr.isatty() and not settings.debug
