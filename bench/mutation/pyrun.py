"""Run mutmut for one package and one suite in its own work directory.

The work directory (`<work root>/<package>/<suite>`) is kept: a second run copies only
what changed, mutmut re-tests the mutants of the functions whose text changed, and
verdicts.py re-tests the survivors whose tests changed. An interrupted run resumes
where it stopped (mutmut saves each verdict as it comes).

Mutants run in a PID and mount namespace of their own, with a private /tmp: a mutant of
the code that stops processes by pid, or removes a service directory a dead run left in
/tmp, can only reach what this run started. The namespace's first process is a shell, not
mutmut: orphans are handed to it, and mutmut takes any child it is told of for a worker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.mutation import verdicts
from bench.mutation.packages import FAST_MARKERS, NOT_FAST, OTHER_INTERPRETER, Package
from bench.mutation.workdir import ROOT, sync, top_levels

SUPPORT = Path(__file__).resolve().parent / "support"
BIN = Path(sys.executable).parent


def config(package: Package, suite: str) -> str:
    common = ["-q", "-p", "no:cacheprovider", "-p", "nc_mutation_plugin"]
    if suite == "fast":
        args = [*common, "-m", FAST_MARKERS]
        for test in NOT_FAST:  # a whole file is not even imported (it may need bench/)
            args += ["--deselect" if "::" in test else "--ignore", test]
        selection = ["tests"]
        # mypy --strict is part of the fast suite (tests/test_static.py): a mutant it
        # refuses is caught there. Unused ignores are mutmut's own trampoline lines.
        # (mutmut reads the report as mypy's only when the word mypy is in the command.)
        # mutants/ is mypy's working directory; errors outside every mutant are dropped
        # (support/mypy_mutants.py says why).
        typecheck = [
            str(BIN / "python"), "../support/mypy_mutants.py",
            "mypy", "--output", "json", "--no-warn-unused-ignores", "nestcustom",
        ]  # fmt: skip
    else:
        args = [*common, "-m", "not slow"]
        selection = list(package.universe)
        typecheck = []
    also = [name for name in top_levels() if name not in ("nestcustom", "tests", "pyproject.toml")]
    lines = [
        "[tool.mutmut]",
        'source_paths = ["nestcustom"]',
        f"only_mutate = {json.dumps(list(package.modules))}",
        f"do_not_mutate = {json.dumps(list(OTHER_INTERPRETER))}",
        f"also_copy = {json.dumps(also)}",
        f"pytest_add_cli_args = {json.dumps(args)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(selection)}",
        f"type_check_command = {json.dumps(typecheck)}",
        "use_git_change_detection = false",
        'on_dependency_change = "ignore"',
        "use_setproctitle = false",
        # Each mutant's tests run in a child forked from a process that has already
        # imported the tests and the mutated tree (pytest --collect-only): without it,
        # every child imports them again, most of a mutant's cost.
        'process_isolation = "forkserver"',
        'forkserver_warmup = "collect"',
    ]
    return "\n".join(lines) + "\n"


def prepare(work: Path, package: Package, suite: str) -> list[Path]:
    changed = sync(work)
    pyproject = (ROOT / "pyproject.toml").read_text().split("\n[tool.mutmut]")[0]
    (work / "pyproject.toml").write_text(pyproject + "\n" + config(package, suite))
    shutil.copytree(SUPPORT, work / "support", dirs_exist_ok=True)
    for name in ("hits", "tmp"):
        (work / name).mkdir(exist_ok=True)
    return changed


def mutmut(work: Path, jobs: int, names: list[str], log: Path, budget: float) -> int:
    env = dict(os.environ)
    env["NC_MUTATION_BUDGET"] = str(budget)
    env["PYTHONPATH"] = f"{work / 'mutants'}:{work / 'support'}"
    env["NC_MUTATION_HITS"] = str(work / "hits")
    env.pop("MUTANT_UNDER_TEST", None)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    argv = [str(BIN / "mutmut"), "run", "--max-children", str(jobs), *names]
    isolated = [
        "unshare", "--pid", "--fork", "--mount-proc", "--mount", "--propagation", "private",
        "--", "sh", "-c", 'mount --bind "$1" /tmp && shift && nice -n 10 "$@"', "sh",
        str(work / "tmp"), *argv,
    ]  # fmt: skip
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv[:4])} ({len(names)} named)\n")
        out.flush()
        return subprocess.run(
            isolated, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode


def run(
    package: Package,
    suite: str,
    work: Path,
    jobs: int,
    names: list[str] | None = None,
    recheck: bool = False,
    budget: float = 0.0,
) -> int:
    """Bring the verdicts of `work` up to date; mutmut's exit status (0: done).

    `budget`: the seconds of tests (as they take unmutated) each mutant is tried against,
    cheapest and own package's first (support/nc_mutation_plugin.py); 0: all of them."""
    changed = prepare(work, package, suite)
    forgotten = verdicts.forget_changed_tests(work, changed)
    # A survivor of a smaller budget may fall to the tests a larger one adds.
    stamp = work / "nc-budget"
    grown = stamp.is_file() and float(stamp.read_text()) != budget
    reset = verdicts.reset_stale(work, everything=recheck, survivors=grown)
    stamp.write_text(str(budget))
    print(
        f"{package.name}/{suite}: {len(changed)} file(s) changed, {forgotten} test(s) to map "
        f"again, {reset} verdict(s) reset",
        flush=True,
    )
    log = work / "mutmut.log"
    code = 0
    for _ in range(3):
        before = verdicts.undecided(work)
        todo: list[str] = []
        if names is not None:
            known = {m.name: m.exit_code for m in verdicts.mutants(work)}
            todo = [n for n in names if known.get(n) is None]
            if not todo:
                break
        code = mutmut(work, jobs, todo, log, budget)
        verdicts.record_keys(work, before | set(todo))
        if code != 0:
            print(f"{package.name}/{suite}: mutmut exited {code}; see {log}", flush=True)
            break
        # New tests mapped during the run may reach survivors decided before it.
        if verdicts.reset_stale(work) == 0:
            break
    return code
