"""Health after the reboot: the script that runs on the host, and how its output is judged.

The script runs here under sh with a fake `systemctl` and `rpm` on PATH (a host has the
real ones); judging is pure.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

from nestcustom.deploy.health import (
    SCRIPT,
    Check,
    HealthChecks,
    from_recipe,
    judge,
    parse_results,
)
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SYSTEMCTL = """\
#!/bin/sh
case "$1" in
  is-system-running) cat "$STATE"; [ "$(cat "$STATE")" = running ] ;;
  --failed) [ "$(cat "$STATE")" = degraded ] && echo "broken.service loaded failed failed Broken" ;;
  show) shift; while [ "$1" = -p ]; do shift 2; done; [ "$1" = -- ] && shift
        case "$1" in
          good.service) printf 'ActiveState=active\\nSubState=running\\nType=simple\\nResult=success\\n' ;;
          once.service) printf 'ActiveState=inactive\\nSubState=dead\\nType=oneshot\\nResult=success\\n' ;;
          *) printf 'ActiveState=failed\\nSubState=failed\\nType=simple\\nResult=exit-code\\n' ;;
        esac ;;
esac
"""
RPM = """\
#!/bin/sh
[ "$2" = -- ] && shift
[ "$2" = strace ] && { echo strace-5.18-1; exit 0; }
echo "package $2 is not installed"; exit 1
"""


def run_script(tmp_path: Path, checks: HealthChecks, state: str = "running") -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("systemctl", SYSTEMCTL), ("rpm", RPM)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "state").write_text(state)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STATE": str(tmp_path / "state"),
    }
    done = subprocess.run(
        ["sh", "-c", SCRIPT, "sh", *checks.argv()],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_a_healthy_host_passes_every_check(tmp_path: Path) -> None:
    motd = tmp_path / "motd"
    motd.write_text("hello world\n")
    motd.chmod(0o644)
    checks = HealthChecks(
        (
            Check("unit", "good.service"),
            Check("unit", "once.service"),  # a oneshot that ran and succeeded
            Check("present", "strace"),
            Check("absent", "toolbox"),
            Check("file", str(motd), ("yes", "0644", "hello")),
            Check("file", str(tmp_path / "gone"), ("no", "", "")),
            Check("command", "echo a b", ("0", "^a b$"), ("echo", "a b")),
            Check("command", "sh -c exit 3", ("3", ""), ("sh", "-c", "exit 3")),
        )
    )
    assert judge(checks, run_script(tmp_path, checks)) == []


def test_each_failed_check_is_named(tmp_path: Path) -> None:
    checks = HealthChecks(
        (
            Check("unit", "app.service"),
            Check("present", "toolbox"),
            Check("absent", "strace"),
            Check("file", str(tmp_path / "missing"), ("yes", "", "")),
            Check(
                "command",
                "printf $(x)\\n==result 0",
                ("0", "ok"),
                ("printf", "$(x)\\n==result 0\\n"),
            ),
            Check("command", "sleep 5", ("0", ""), ("sleep", "5"), 0.2),
        )
    )
    assert judge(checks, run_script(tmp_path, checks, "degraded")) == [
        "the system is degraded; failed units: broken.service",
        "unit app.service is failed (failed, result exit-code)",
        "package toolbox is not installed",
        "package strace is installed",
        f"file {tmp_path / 'missing'} is missing",
        # what a command prints cannot pass for a result of the script
        "command printf $(x)\\n==result 0\\n: output does not match 'ok': $(x)\\n==result 0\\n",
        "command sleep 5 timed out after 0.2 s",
    ]


def test_output_cut_short_is_not_healthy() -> None:
    checks = HealthChecks((Check("unit", "a.service"),))
    assert judge(checks, "==result 0\ncnVubmluZwo=\n") == [
        "the health checks did not all run (1 results of 3)"
    ]


def test_a_recipes_host_checks() -> None:
    recipe = load_recipe(FIXTURES / "pass" / "everything.yaml", FIXTURES).recipe
    checks = from_recipe(recipe, "everything.yaml").checks
    kinds = [(c.kind, c.target) for c in checks]
    assert ("unit", "chronyd.service") in kinds
    assert ("present", "strace") in kinds and ("absent", "toolbox") in kinds
    assert ("file", "/etc/motd") in kinds
    command = next(c for c in checks if c.kind == "command")
    assert (command.run, command.args) == (("strace", "-V"), ("0", "strace -- version"))
    assert not any("@." in target for _, target in kinds)


@pytest.mark.parametrize("state", ["starting", "stopping"])
def test_a_system_not_running_is_not_healthy(tmp_path: Path, state: str) -> None:
    assert judge(HealthChecks(), run_script(tmp_path, HealthChecks(), state)) == [
        f"the system is {state}" + (" (still not up after 120 s)" if state == "starting" else "")
    ]


def test_values_in_a_recipes_commands_are_filled_as_the_build_filled_them(
    tmp_path: Path, write_recipe: WriteRecipe
) -> None:
    # {{recipe.name}}: known from the recipe; {{arch}}, {{os.id}}: read on the host, as the
    # build read them in the image (a word left unfilled would fail a healthy host)
    recipe = load_recipe(
        write_recipe(
            f"name: ops\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [strace]}}]\n"
            "tests:\n  commands:\n"
            "    - {run: [echo, '{{recipe.name}} {{arch}} {{os.id}}'],"
            " stdout: '^ops '}\n"
        )
    ).recipe
    checks = from_recipe(recipe, "ops.yaml")
    output = run_script(tmp_path, checks)
    assert judge(checks, output) == []
    os_id = next(
        line.split("=", 1)[1].strip('"')
        for line in Path("/etc/os-release").read_text().splitlines()
        if line.startswith("ID=")
    )
    printed = parse_results(output)[-1].output
    assert printed == f"ops {platform.machine()} {os_id}\n"
