"""Mutation score of nestcustom's pure modules (mutmut), in a scratch copy.

    python -m bench.mutation STAGE [--jobs 2] [--keep DIR]      STAGE: recipe | deploy

Each stage names the modules mutated and the fast tests run against each mutant
(one table below). The copy keeps mutmut's `mutants/` tree and its configuration
out of the project. Prints mutmut's per-mutant results and the score. A habit
before a release, not part of CI (a minute or a few on 2 cores).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# stage -> (modules mutated, tests run against each mutant)
STAGES: dict[str, tuple[list[str], list[str]]] = {
    # The NestOS rules, build-time values, RPM version comparison and the command and
    # repo-file writers: pure code a wrong branch of which a user would meet. render.py
    # and steps.py are left to the golden and property tests (hypothesis makes a mutant
    # of them cost seconds: a run of every module takes about an hour on 2 cores).
    "recipe": (
        [
            "nestcustom/recipe/rules_image.py",
            "nestcustom/recipe/rules_files.py",
            "nestcustom/recipe/rules_build.py",
            "nestcustom/recipe/values.py",
            "nestcustom/containerfile/commands.py",
            "nestcustom/containerfile/repofile.py",
            "nestcustom/image/rpmversion.py",
        ],
        [
            "tests/recipe",
            "tests/containerfile/test_render.py",
            "tests/containerfile/test_commands.py",
            "tests/image/test_rpmversion.py",
            "tests/image/test_constraints.py",
        ],
    ),
    "deploy": (
        [
            "nestcustom/deploy/replay.py",
            "nestcustom/deploy/decide.py",
            "nestcustom/deploy/inventory.py",
            "nestcustom/deploy/hoststatus.py",
        ],
        [
            "tests/deploy/test_decisions.py",
            "tests/deploy/test_journal.py",
            "tests/deploy/test_inventory.py",
            "tests/deploy/test_facts.py",
        ],
    ),
}


def config(stage: str) -> str:
    modules, tests = STAGES[stage]
    return f"""
[tool.mutmut]
source_paths = ["nestcustom"]
only_mutate = {modules!r}
also_copy = ["recipes", "containerfiles", "files", "README.md"]
pytest_add_cli_args_test_selection = {tests!r}
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-m", "not universe and not slow"]
"""


def run(stage: str, jobs: int, keep: Path | None) -> None:
    work = keep or Path(tempfile.mkdtemp(prefix=f"nc-mutate-{stage}-"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        for name in ("nestcustom", "tests", "recipes", "containerfiles", "files"):
            shutil.rmtree(work / name, ignore_errors=True)
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "README.md", work / "README.md")
        pyproject = (ROOT / "pyproject.toml").read_text()
        (work / "pyproject.toml").write_text(pyproject.split("\n[tool.mutmut]")[0] + config(stage))
        mutmut = [sys.executable, "-m", "mutmut"]
        subprocess.run(
            [*mutmut, "run", "--max-children", str(jobs)],
            cwd=work,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        results = subprocess.run(
            [*mutmut, "results", "--all", "true"],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        states = [line.rsplit(":", 1)[-1].strip() for line in results.splitlines() if ":" in line]
        for line in results.splitlines():
            if not line.rstrip().endswith(": killed"):
                print(line)
        killed = states.count("killed")
        print(
            f"{stage}: killed {killed} of {len(states)} mutants ({100 * killed / max(len(states), 1):.1f}%)"
        )
        for state in sorted(set(states)):
            print(f"  {state}: {states.count(state)}")
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work in DIR and leave it (to inspect mutants)")
    args = parser.parse_args()
    run(args.stage, args.jobs, args.keep)


if __name__ == "__main__":
    main()
