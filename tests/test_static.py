"""The linters run as tests: mypy --strict, ruff and ruff's formatter over the project."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.parametrize(
    "tool",
    [["mypy", "--strict"], ["ruff", "check", "."], ["ruff", "format", "--check", "."]],
    ids=["mypy", "ruff", "ruff-format"],
)
def test_linter_is_clean(tool: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *tool], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
