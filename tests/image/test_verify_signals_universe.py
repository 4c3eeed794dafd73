"""`nestcustom test` against a command that never ends: its timeout, and SIGTERM."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.image.universe import interrupt, nestcustom, podman, read_until, start_nestcustom

pytestmark = pytest.mark.universe


def write(project: Path, base: str, command: str) -> None:
    (project / "recipes").mkdir(exist_ok=True)
    (project / "recipes" / "r.yaml").write_text(
        f'name: r\nbase: {{image: "{base}"}}\nlayers:\n  - {{name: none, remove: [nc-none]}}\n'
        f"tests:\n  commands:\n    - {command}\n"
    )


def checking_containers(image: str) -> list[str]:
    out = podman("ps", "-a", "--filter", f"ancestor={image}", "--format", "{{.Names}}").stdout
    return [n for n in out.split() if n.startswith("nestcustom-test-")]


def test_a_command_that_never_ends_fails_at_its_timeout(
    tmp_path: Path, nestos_sp2_image: str
) -> None:
    write(tmp_path, nestos_sp2_image, "{run: [sleep, '1000'], timeout: 2}")
    started = time.monotonic()
    result = nestcustom("test", "recipes/r.yaml", "--image", nestos_sp2_image, cwd=tmp_path)
    assert result.returncode == 1
    assert time.monotonic() - started < 60  # not the 1000 s of the command
    assert "FAIL  command  sleep 1000 exit 0: timed out: still running after 2 s" in result.stdout
    assert checking_containers(nestos_sp2_image) == []


def test_sigterm_during_test_removes_its_container(tmp_path: Path, nestos_sp2_image: str) -> None:
    write(tmp_path, nestos_sp2_image, "{run: [sleep, '1000'], timeout: 600}")
    process = start_nestcustom(
        "--debug", "test", "recipes/r.yaml", "--image", nestos_sp2_image, cwd=tmp_path
    )
    read_until(process, "sleep 1000")  # --debug logs each command as it starts
    time.sleep(0.5)
    assert checking_containers(nestos_sp2_image), "the test container should be running"
    _, stderr = interrupt(process, signal.SIGTERM)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted by SIGTERM"
    assert "Traceback" not in stderr
    assert checking_containers(nestos_sp2_image) == []
