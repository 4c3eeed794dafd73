"""The image checks' commands through testinfra (here its local backend, the same host API
as the podman one): exit code, output and the command's stderr reach the checks."""

from __future__ import annotations

import testinfra

from nestcustom.image.checks import Output
from nestcustom.image.verify import _TestinfraRunner


def test_a_commands_exit_code_output_and_stderr_come_back() -> None:
    runner = _TestinfraRunner(testinfra.get_host("local://"), "unused")
    out = runner.run("sh -c %s", "echo out; echo 'no such file' >&2; exit 3")
    assert out == Output(3, b"out\n", "no such file\n")
    assert out.why() == "exit 3: no such file"
