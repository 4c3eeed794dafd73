"""Shell mutants of nestcustom/containerfile/build-helper.sh (being written)."""

from __future__ import annotations

from pathlib import Path

from bench.mutation.report import Outcome


def run(work: Path, jobs: int, fast_only: bool, recheck: bool) -> None:
    raise SystemExit("build-helper: not yet")


def outcomes(work: Path) -> list[Outcome]:
    return []
