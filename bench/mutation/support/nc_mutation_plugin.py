"""A pytest plugin for mutation runs (`-p nc_mutation_plugin`).

- While mutmut maps tests to functions, the functions that child processes of a test ran
  (written by sitecustomize.py) count for that test.
- A mutant's tests run cheapest first, the tests of the mutated module's own package
  (tests/PACKAGE/) before the others: with -x, a mutant most tests kill costs little.
- They stop at a budget: the tests that fit in NC_MUTATION_BUDGET seconds (by the time
  each took unmutated), at least the first NC_MUTATION_AT_LEAST. A function every test
  reaches (the recipe loader, the CLI's error handling) would otherwise cost a survivor
  the whole suite. A mutant the budget's tests miss is reported as surviving: the score
  can only be too low, never too high.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    hits_dir = os.environ.get("NC_MUTATION_HITS")
    if os.environ.get("MUTANT_UNDER_TEST") != "stats" or not hits_dir:
        return
    from mutmut.state import state

    for path in Path(hits_dir).glob("*.hits"):
        state()._stats.update(path.read_text().split())
        path.unlink()


def _package_tests(mutant: str) -> str:
    """tests/recipe/ for nestcustom.recipe.source.x_f__mutmut_1; tests/ for the ground."""
    parts = mutant.split(".")
    return f"tests/{parts[1]}/" if len(parts) > 3 else "tests/"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    try:
        durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    own = _package_tests(mutant) if "__mutmut_" in mutant else "\0"
    items.sort(key=lambda item: (not item.nodeid.startswith(own), durations.get(item.nodeid, 0.0)))
    budget = float(os.environ.get("NC_MUTATION_BUDGET", "0"))
    if "__mutmut_" not in mutant or budget <= 0:
        return
    at_least = int(os.environ.get("NC_MUTATION_AT_LEAST", "3"))
    kept: list[Any] = []
    spent = 0.0
    for item in items:
        cost = durations.get(item.nodeid, 0.0)
        if len(kept) >= at_least and spent + cost > budget:
            continue
        kept.append(item)
        spent += cost
    chosen = {id(item) for item in kept}
    dropped = [item for item in items if id(item) not in chosen]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
