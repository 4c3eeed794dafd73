"""A pytest plugin for mutation runs (`-p nc_mutation_plugin`).

- While mutmut maps tests to functions, the functions that child processes of a test ran
  (written by sitecustomize.py) count for that test.
- The selected tests run cheapest first, so a mutant most tests kill costs little (pytest
  runs with -x): mutmut hands them over in no particular order.
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


def pytest_collection_modifyitems(items: list[Any]) -> None:
    try:
        durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
