"""The service guard, started wrongly, says how to start it and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_guard_without_a_service_prints_its_usage(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom.image.guard", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "usage: python -m nestcustom.image.guard DIR -- SERVICE-ARGV...\n"
