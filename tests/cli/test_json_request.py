"""Which runs promised a JSON document, read from the command line before click parses it
(so even a usage error answers in JSON): the command past global options, a group's
sub-command, `--json` or `--format json` where the command has them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nestcustom.cli.output import asks_for_json, command_of


@pytest.mark.parametrize(
    ("argv", "command", "rest"),
    [
        (["build", "r.yaml", "--json"], "build", ["r.yaml", "--json"]),
        (["--project", "p", "-v", "build", "--json"], "build", ["--json"]),
        (["--project", "p", "--no-color", "matrix"], "matrix", []),
        (["base", "from-iso", "x.iso", "--json"], "base from-iso", ["x.iso", "--json"]),
        (["fleet", "--json"], "fleet", ["--json"]),
        (["--verbose", "--quiet", "diff", "a", "b"], "diff", ["a", "b"]),
    ],
)
def test_the_command_is_found_past_global_options(
    argv: list[str], command: str, rest: list[str]
) -> None:
    assert command_of(argv) == (command, rest)


@pytest.mark.parametrize(
    ("command", "args", "wanted"),
    [
        ("build", ["r.yaml", "--json"], True),
        ("build", ["r.yaml"], False),
        ("diff", ["a", "b", "--format=json"], True),
        ("diff", ["a", "b", "--format", "json"], True),
        ("diff", ["a", "b", "--format", "markdown"], False),
        ("diff", ["a", "b", "--format"], False),
        ("matrix", ["--format=text"], False),
        ("render", ["--format=json"], False),  # render has no JSON format
    ],
)
def test_json_is_promised_only_where_the_command_has_it(
    command: str, args: list[str], wanted: bool
) -> None:
    assert asks_for_json(command, args) is wanted


def test_usage_errors_name_the_program_as_users_type_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", "render", "--no-such-option"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Usage: nestcustom render [OPTIONS]" in done.stderr
    assert "Error: No such option '--no-such-option'." in done.stderr
