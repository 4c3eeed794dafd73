"""Project errors: every failure a user can cause or meet is one of these.

Nothing below the CLI prints or exits. Steps raise a `NestcustomError` that
carries a message and a hint; `cli/common.py` prints them and maps the class to an
exit code (0 ok, 1 failure, 2 bad input or usage, 130 interrupted).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class NestcustomError(Exception):
    """Base of all project errors: a message, an optional hint, an exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BadInputError(NestcustomError):
    """The user's input (options, files) cannot be used as given."""

    exit_code = EXIT_BAD_INPUT


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Location:
    """A place in a source file; line and column count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One located finding about a recipe: a schema error or a lint."""

    location: Location
    path: str
    message: str
    hint: str | None = None
    severity: Severity = Severity.ERROR
    code: str = "schema"

    def format(self) -> str:
        where = f"{self.location}: {self.path}: " if self.path else f"{self.location}: "
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        text = f"{where}{prefix}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": self.path,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class RecipeError(BadInputError):
    """A recipe (or a file it includes) is not valid; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0].format() if problems else "invalid recipe"
        super().__init__(first)
        self.problems = problems
