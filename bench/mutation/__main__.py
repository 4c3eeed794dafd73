"""Mutation testing of the whole product, package by package.

    python -m bench.mutation all                 every package, then the table
    python -m bench.mutation recipe image ...    those packages
    python -m bench.mutation build-helper        the shell mutants of build-helper.sh
    python -m bench.mutation sample              a stratified sample of every package's
                                                 mutants in one run, scores with their 95%
                                                 intervals (--per-package N, default 150)
    python -m bench.mutation report [PACKAGE...] the table from what the runs left
    python -m bench.mutation survivors PACKAGE   the mutants no test caught, with diffs
    python -m bench.mutation judge PACKAGE GLOB KIND REASON
                                                 record the survivors whose names match GLOB
                                                 as equivalent, unreachable or accepted

  --jobs N        mutants tried at once (default 1: the machine is shared)
  --budget S      seconds of fast tests a mutant is tried against, cheapest and its own
                  package's first (default 20; 0: every test that reaches it). A mutant
                  only a later test would catch counts as a survivor.
  --fast-only     no universe tests for the fast suite's survivors
  --recheck       forget every verdict of those packages first
  --work DIR      where the runs keep their copies and verdicts
                  (default $NC_MUTATION_WORK or /var/tmp/nestcustom-mutation)

A package's mutants are tried against the fast suite; its survivors, against the
package's universe tests (bench/mutation/packages.py). Runs are resumable (stop at any
time, run again) and incremental: a second run re-tests only the mutants of functions
whose text changed and the survivors whose tests changed.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from pathlib import Path
from typing import cast

from bench.mutation import judged, pyrun, report, sample, shell
from bench.mutation.packages import PACKAGES

SHELL = "build-helper"
ORDER = [*PACKAGES, SHELL]


def default_work() -> Path:
    return Path(os.environ.get("NC_MUTATION_WORK", "/var/tmp/nestcustom-mutation"))


def run_package(
    name: str, work: Path, jobs: int, fast_only: bool, recheck: bool, budget: float
) -> None:
    if name == SHELL:
        shell.run(work / SHELL, jobs, fast_only, recheck)
        return
    package = PACKAGES[name]
    if pyrun.run(package, "fast", work / name / "fast", jobs, recheck=recheck, budget=budget) != 0:
        return
    if fast_only or not package.universe:
        return
    left = [
        o.name
        for o in report.python_outcomes(name, work / name / "fast", work / name / "none")
        if o.caught_by in ("survived", "no tests")
    ]
    if left:
        pyrun.run(package, "universe", work / name / "universe", jobs, names=left, recheck=recheck)


def outcomes(name: str, work: Path) -> list[report.Outcome]:
    if name == SHELL:
        return shell.outcomes(work / SHELL)
    return report.python_outcomes(name, work / name / "fast", work / name / "universe")


def judge(work: Path, words: list[str], parser: argparse.ArgumentParser) -> int:
    if len(words) != 4 or words[2] not in judged.KINDS:
        parser.error(f"judge PACKAGE GLOB KIND REASON (KIND: {', '.join(judged.KINDS)})")
    package, glob, kind, reason = words
    left = [o for o in outcomes(package, work) if o.caught_by in ("survived", "no tests", "stale")]
    chosen = [o for o in left if fnmatch.fnmatch(o.name, glob)]
    if not chosen:
        print(f"no survivor of {package} matches {glob}", file=sys.stderr)
        return 1
    entries = {}
    # A shell mutant is judged under its ident (function and change), never its line.
    idents = (
        {m.name: m.ident for m in shell.mutants(shell.helper_text())} if package == SHELL else {}
    )
    for o in chosen:
        key = idents.get(o.name, o.name)
        entries[key] = judged.Judgement(o.change, cast(judged.Kind, kind), reason)
        print(f"{o.name}: {kind}")
    judged.add(package, entries)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mutation",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", nargs="+", metavar="all|report|survivors|PACKAGE")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--fast-only", action="store_true")
    parser.add_argument("--recheck", action="store_true")
    parser.add_argument("--work", type=Path, default=default_work())
    parser.add_argument("--per-package", type=int, default=150)
    args = parser.parse_args(argv)
    command, names = args.what[0], args.what[1:]
    if command == "sample":
        where = args.work / "sample" / "fast"
        if names != ["report"]:
            sample.run(where, args.per_package, args.jobs, args.budget)
        print(sample.table(sample.outcomes(where)))
        return 0
    if command == "judge":
        return judge(args.work, names, parser)
    if command not in ("report", "survivors"):
        command, names = "run", args.what
    names = ORDER if names in ([], ["all"]) else names
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        parser.error(f"unknown package(s) {', '.join(unknown)}; known: all, {', '.join(ORDER)}")
    if command == "survivors":
        for name in names:
            for o in outcomes(name, args.work):
                if o.caught_by in ("survived", "no tests", "stale"):
                    print(f"{o.name} [{o.caught_by}] {o.module}\n    {o.change}")
        return 0
    if command == "run":
        for name in names:
            run_package(name, args.work, args.jobs, args.fast_only, args.recheck, args.budget)
    found = {name: outcomes(name, args.work) for name in names}
    scores = [report.score(name, found[name]) for name in names if found[name]]
    print(report.table(scores))
    report.save(args.work / "summary.json", scores, found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
