"""What the health check after a reboot says, run here for real: the health script under sh
with this machine's own systemctl (no systemd runs here, so it answers nothing about units,
as a host whose systemd does not answer) and a recipe's command check with its own timeout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nestcustom.deploy.health import SCRIPT, Check, HealthChecks, from_recipe, judge
from nestcustom.recipe.load import load_recipe

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v systemctl && command -v timeout"],
                   capture_output=True, check=False).returncode != 0,
    reason="systemctl and timeout (scripts/setup-host)",
)  # fmt: skip

RECIPE = """\
name: timed
base: {image: "localhost/newstart/newstart:v6.06-x86_64", flavor: newstart}
layers:
  - {name: tools, install: [strace]}
tests:
  commands:
    - {run: [sleep, "5"], timeout: 0.5}
"""


def health(checks: HealthChecks) -> list[str]:
    done = subprocess.run(["sh", "-c", SCRIPT, "sh", *checks.argv()],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return judge(checks, done.stdout)


@pytest.mark.skipif(Path("/run/systemd/system").exists(), reason="systemd runs here: it answers")
def test_a_units_state_systemd_does_not_give_is_unknown() -> None:
    problems = health(HealthChecks((Check("unit", "sshd.service"),)))
    assert problems[-1] == "unit sshd.service is unknown"


def test_a_recipes_command_check_is_cut_at_the_recipes_timeout(tmp_path: Path) -> None:
    (tmp_path / "timed.yaml").write_text(RECIPE)
    recipe = load_recipe(tmp_path / "timed.yaml", tmp_path).recipe
    checks = from_recipe(recipe, "timed.yaml")
    assert checks.argv() == ["cmd", "0.5", "2", "sleep", "5"]
    assert health(checks)[-1] == "command sleep 5 timed out after 0.5 s"
