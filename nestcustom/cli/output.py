"""The one JSON document a `--json` run prints on stdout, whatever happens.

With `--json` (or `--format json` for matrix, plan and diff), stdout holds
exactly one JSON object, on every exit path: success, failure (1), bad input
or usage (2), Ctrl-C (130), SIGTERM (143) and an internal error:

    {"command": "build", "ok": false, "exit_code": 2, ...the command's own keys,
     "error": {"kind": "bad-input", "message": "...", "hint": "...", ...}}

`error` is present exactly when `ok` is false. Its `kind` is one of
"failure", "bad-input", "usage", "interrupted" (with "signal": "SIGINT" or
"SIGTERM" and "state": what the stopped work left) and "internal". Human text
goes to stderr in JSON mode, so a tool reads stdout whole.

A run's output state is process-wide: the JSON request is known from the
command line before click parses it (so a usage error or a signal during
start-up still gets its document), and `written` makes sure the error paths
in `common.handle_errors` and `main` never add a second document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The commands whose --json (or --format json) output is a result document. `schema
# --format json` prints the recipe schema itself, not a result, and is not one of them.
JSON_FLAG_COMMANDS = frozenset(
    {
        "validate",
        "build",
        "test",
        "deploy",
        "status",
        "rollback",
        "base from-iso",
        "plan",
        "fleet status",
        "promote",
    }
    | {"keys generate", "sbom", "advisories"}
)
JSON_FORMAT_COMMANDS = frozenset({"matrix", "diff"})
_GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--project"})
# commands whose sub-command names the run
_GROUPS = frozenset({"base", "keys", "fleetlock", "fleet"})

KIND_BY_EXIT = {1: "failure", 2: "bad-input", 130: "interrupted", 143: "interrupted"}


@dataclass
class _State:
    command: str = ""
    wanted: bool = False
    from_argv: bool = False  # what the real command line asked for (main sets it)
    written: bool = False


_state = _State()


def command_of(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The command named on a command line ("base from-iso" for a group) and its arguments."""
    words: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not words and arg in _GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if not words and arg.startswith("-"):
            i += 1
            continue
        if not words or (words[0] in _GROUPS and len(words) == 1 and not arg.startswith("-")):
            words.append(arg)
            i += 1
            continue
        rest = list(argv[i:])
        break
    return " ".join(words), rest


def asks_for_json(command: str, args: Sequence[str]) -> bool:
    if command in JSON_FLAG_COMMANDS and "--json" in args:
        return True
    if command in JSON_FORMAT_COMMANDS:
        for i, arg in enumerate(args):
            if arg == "--format=json" or (
                arg == "--format" and i + 1 < len(args) and args[i + 1] == "json"
            ):
                return True
    return False


def request_from_argv(argv: Sequence[str]) -> None:
    """Remember whether this run promised a JSON document (read before click parses)."""
    command, args = command_of(argv)
    _state.command = command
    _state.wanted = _state.from_argv = asks_for_json(command, args)
    _state.written = False


def begin(command: str, wanted: bool) -> None:
    """A command starts (called by `common.handle_errors`, also for in-process runs)."""
    _state.command = command
    _state.wanted = wanted or _state.from_argv
    _state.written = False


def wanted() -> bool:
    return _state.wanted


def emit(
    payload: Mapping[str, Any], *, exit_code: int = 0, error: Mapping[str, Any] | None = None
) -> None:
    """Write the run's one document: the command's keys, `ok`, `exit_code` and any `error`."""
    if _state.written:
        return
    document: dict[str, Any] = {
        "command": _state.command,
        "ok": exit_code == 0,
        "exit_code": exit_code,
    }
    document.update(payload)
    if error is not None:
        document["error"] = dict(error)
    elif exit_code != 0:
        document["error"] = {"kind": KIND_BY_EXIT.get(exit_code, "failure"), "message": ""}
    _state.written = True
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def emit_result(payload: Mapping[str, Any], failure: str | None) -> None:
    """The document of a run that went to its end: ok, or failed (exit 1) with `failure`."""
    if failure is None:
        emit(payload)
    else:
        emit(payload, exit_code=1, error={"kind": "failure", "message": failure, "hint": None})


def emit_error(
    exit_code: int,
    kind: str,
    message: str,
    hint: str | None = None,
    payload: Mapping[str, Any] | None = None,
    **details: Any,
) -> None:
    """The document of a run that failed, was refused or was stopped (only in JSON mode)."""
    if not _state.wanted or _state.written:
        return
    error = {"kind": kind, "message": message, "hint": hint, **details}
    emit(payload or {}, exit_code=exit_code, error=error)
