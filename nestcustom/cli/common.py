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
            err(f"{errors} error{'s' if errors != 1 else ''}; nothing was written")
            sys.exit(exc.exit_code)
        except NestcustomError as exc:
            err(f"error: {exc.message}")
            if exc.hint:
                err(f"  hint: {exc.hint}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            exit_interrupted(exc)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
            if debug:
                traceback.print_exc()
            err(f"internal error: {type(exc).__name__}: {exc}")
            err("  hint: rerun with --debug for the traceback, and report it")
            sys.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def exit_interrupted(exc: BaseException) -> NoReturn:
    """One line saying which signal stopped the command and what it left; exit 128+N."""
    from nestcustom.proc import Interrupted

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the exit is under way: one line, no traceback
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    state = exc.state if isinstance(exc, Interrupted) else ""
    err(f"interrupted by {signal.Signals(signum).name}" + (f": {state}" if state else ""))
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
