"""Mutation score of the deploy stage's pure modules (mutmut), in a scratch copy.

    python -m bench.mutation_deploy [--jobs 2] [--keep DIR]

Mutates journal replay (replay.py), the rollout decisions (decide.py), the
inventory (inventory.py) and the host's own words (hoststatus.py), and runs the
fast deploy tests that cover them against each mutant. The copy keeps mutmut's
`mutants/` tree and its configuration out of the project (and out of other
stages' mutation runs). Prints mutmut's per-mutant results and the score.
Slow (minutes): a habit before a release, not part of CI.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "nestcustom/deploy/replay.py",
    "nestcustom/deploy/decide.py",
    "nestcustom/deploy/inventory.py",
    "nestcustom/deploy/hoststatus.py",
]
TESTS = [
    "tests/deploy/test_decisions.py",
    "tests/deploy/test_journal.py",
    "tests/deploy/test_inventory.py",
]
CONFIG = f"""
[tool.mutmut]
source_paths = ["nestcustom"]
only_mutate = {MODULES!r}
pytest_add_cli_args_test_selection = {TESTS!r}
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-m", "not universe"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work in DIR and leave it (to inspect mutants)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="nc-mutate-"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        for name in ("nestcustom", "tests"):
            shutil.rmtree(work / name, ignore_errors=True)
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        pyproject = (ROOT / "pyproject.toml").read_text()
        (work / "pyproject.toml").write_text(pyproject.split("\n[tool.mutmut]")[0] + CONFIG)
        mutmut = [sys.executable, "-m", "mutmut"]
        subprocess.run([*mutmut, "run", "--max-children", str(args.jobs)], cwd=work, check=False)
        results = subprocess.run(
            [*mutmut, "results", "--all", "true"],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        print(results)
        states = [line.rsplit(":", 1)[-1].strip() for line in results.splitlines() if ":" in line]
        killed = states.count("killed")
        total = len(states)
        print(f"killed {killed} of {total} mutants ({100 * killed / max(total, 1):.1f}%)")
        for state in sorted(set(states)):
            print(f"  {state}: {states.count(state)}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
