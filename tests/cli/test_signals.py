"""Stop signals at the command line: quiet, with the exit code the signal names."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


def bare_start() -> float:
    """Seconds for this Python to start and exit: before that, Ctrl-C is Python's own affair
    (a signal during its own initialisation is reported by the interpreter)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - started


@pytest.mark.parametrize("step", range(8))
def test_ctrl_c_while_python_starts_prints_no_traceback(step: int) -> None:
    delay = bare_start() + 0.02 + 0.025 * step  # through the imports of the CLI and the command
    recipes = sorted(str(p) for p in (ROOT / "recipes").glob("*.yaml"))
    process = subprocess.Popen(
        [sys.executable, "-m", "nestcustom", "validate", *recipes],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if "Fatal Python error: init_import_site" in stderr:
        return  # a loaded machine: the signal came while the interpreter itself started
    assert "Traceback" not in stderr
    # Done before the signal came (0), stopped with one line (130), or stopped by the
    # signal itself (-2) before nestcustom's handler was in place.
    assert process.returncode in (0, 130, -signal.SIGINT), stderr
    if process.returncode == 130:
        assert stderr.strip().splitlines()[-1] == "interrupted by SIGINT"
