"""A stratified sample of every package's mutants, run in one copy of the product.

Trying all ~18,000 mutants of the product costs 6 to 10 hours on two cores (about 3 s a
mutant here). A sample answers the question the goal asks, "is the score at least 90% in
every package", in well under an hour, with a stated error:

- Every module contributes, in proportion to its mutants and at least `FLOOR` of them
  (fewer only if it has fewer): no module is left out, however small.
- Which mutants a module contributes is fixed by a hash of their names, not by a seeded
  random generator: the same source gives the same sample on every machine, and a
  change to one function moves only that function's mutants in or out.
- All packages share one work directory, so mutmut maps tests to functions, type-checks
  the mutants and runs the clean suite once, not once per package.
- The report gives each package's score with its 95% Wilson interval
  (`python -m bench.mutation sample --per-package N`).

Full runs (`python -m bench.mutation PACKAGE`) stay the way to see every survivor.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from bench.mutation import pyrun, report, verdicts, workdir
from bench.mutation.packages import PACKAGES, Package, package_of

FLOOR = 2
PRODUCT = Package("product", ("nestcustom/*.py",), ())
SAMPLE_FILE = "nc-sample.json"


def choose(names_by_module: dict[str, list[str]], per_package: int) -> dict[str, list[str]]:
    """The sampled mutant names of each package: `per_package` in all (a little more, as
    every module gives at least FLOOR), shared among its modules by their mutant counts."""
    modules_of: dict[str, list[str]] = defaultdict(list)
    for module in names_by_module:
        package = package_of(module)
        if package is None:
            raise ValueError(f"{module} belongs to no package (bench/mutation/packages.py)")
        modules_of[package].append(module)
    chosen: dict[str, list[str]] = {}
    for package, modules in sorted(modules_of.items()):
        total = sum(len(names_by_module[m]) for m in modules)
        picked: list[str] = []
        for module in sorted(modules):
            names = names_by_module[module]
            quota = max(FLOOR, round(per_package * len(names) / max(total, 1)))
            picked += sorted(names, key=_rank)[:quota]
        chosen[package] = sorted(picked)
    return chosen


def _rank(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def wilson(caught: int, tried: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion, in percent."""
    if tried == 0:
        return (0.0, 100.0)
    p = caught / tried
    centre = (p + z * z / (2 * tried)) / (1 + z * z / tried)
    half = z * math.sqrt(p * (1 - p) / tried + z * z / (4 * tried * tried)) / (1 + z * z / tried)
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def generate(work: Path) -> None:
    """Let mutmut write the mutants (and their .meta files, which name them) without
    running anything: the sample is drawn from those names."""
    env = dict(os.environ, PYTHONPATH=str(work / "support"))
    env.pop("MUTANT_UNDER_TEST", None)
    code = (
        "import mutmut.__main__ as m\n"
        "from mutmut.utils import file_utils as f\n"
        "import os\n"
        "os.makedirs('mutants', exist_ok=True)\n"
        "f.copy_src_dir(); f.copy_also_copy_files(); f.setup_source_paths()\n"
        "m.create_mutants(2)\n"
    )
    subprocess.run(
        [str(pyrun.BIN / "python"), "-c", code], cwd=work, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def draw(work: Path, per_package: int) -> dict[str, list[str]]:
    by_module: dict[str, list[str]] = defaultdict(list)
    for m in verdicts.mutants(work):
        by_module[m.module].append(m.name)
    chosen = choose(by_module, per_package)
    (work / SAMPLE_FILE).write_text(json.dumps(chosen, indent=1))
    return chosen


def run(work: Path, per_package: int, jobs: int, budget: float) -> int:
    changed = pyrun.prepare(work, PRODUCT, "fast")
    # pyrun.run syncs again and finds nothing new: the changed tests are forgotten here.
    verdicts.forget_changed_tests(work, changed)
    generate(work)
    chosen = draw(work, per_package)
    # pyrun.run syncs again: a file edited meanwhile (a mutant tried by hand in the
    # checkout) would be copied in and judged as the product. Stop instead.
    moved = workdir.differences(work)
    if moved:
        print(
            f"sample: the checkout changed while the run started ({', '.join(map(str, moved[:5]))}"
            f"); run it again once the checkout is as it should be measured",
            file=sys.stderr,
        )
        return 2
    names = [n for package in sorted(chosen) for n in chosen[package]]
    print(f"sample: {len(names)} mutants of {len(chosen)} packages", flush=True)
    return pyrun.run(PRODUCT, "fast", work, jobs, names=names, budget=budget)


def outcomes(work: Path) -> dict[str, list[report.Outcome]]:
    """Each package's sampled outcomes (judgements applied), from the last run."""
    try:
        chosen: dict[str, list[str]] = json.loads((work / SAMPLE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for package in PACKAGES:
        wanted = set(chosen.get(package, []))
        found = report.python_outcomes(package, work, work.parent / "universe")
        out[package] = [o for o in found if o.name in wanted]
    return out


def table(found: dict[str, list[report.Outcome]]) -> str:
    """Per package: which suite caught each sampled mutant, the score among those tried
    (judged equivalent/unreachable ones left out) and its 95% interval."""
    head = ["package", "sampled", "fast", "mypy", "universe", "judged out", "survived",
            "not run", "score", "95% interval", "fast share"]  # fmt: skip
    rows = [head, ["---"] * len(head)]
    for package, items in found.items():
        s = report.score(package, items)
        caught = sum(s.counts.get(c, 0) for c in report.CAUGHT)
        fast = s.counts.get("fast", 0) + s.counts.get("mypy", 0)
        left = s.counts.get("not run", 0)
        tried = s.denominator - left
        low, high = wilson(caught, tried)
        rows.append(
            [package, str(s.mutants), *(str(s.counts.get(c, 0)) for c in report.CAUGHT),
             str(s.mutants - s.denominator), str(tried - caught), str(left),
             f"{100 * caught / max(tried, 1):.1f}%", f"{low:.1f}-{high:.1f}%",
             f"{100 * fast / max(tried, 1):.1f}%"]
        )  # fmt: skip
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)
