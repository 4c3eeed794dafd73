"""mutmut's verdicts in a work directory, and when a cached one is stale.

mutmut keeps a verdict per mutant (mutants/**/*.py.meta) and forgets those of functions
whose text changed. A survivor (or a mutant no test reached) must also be tried again
when the tests that run its function change: each verdict is recorded with a key, the
function's hash plus the names and contents of the test files that cover the function
(mutants/mutmut-stats.json), and a verdict whose key no longer matches is reset. Kills
are kept: a kill stays a kill until its function changes (`--recheck` resets everything).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KEYS_FILE = "nc-verdict-keys.json"

# mutmut's exit codes (mutmut/stats.py): what each means here.
KILLED = {1, 3}
TYPE_CHECK = {37}
TIMEOUT = {36, -24, 24, 152, 255, -9}
SURVIVED = {0}
NO_TESTS = {33, 5}
RETRIED = SURVIVED | NO_TESTS


@dataclass(frozen=True)
class Mutant:
    name: str  # nestcustom.recipe.values.x_foo__mutmut_3
    module: str  # nestcustom/recipe/values.py
    function: str  # x_foo
    exit_code: int | None


def meta_files(work: Path) -> Iterator[Path]:
    yield from sorted((work / "mutants" / "nestcustom").rglob("*.py.meta"))


def mutants(work: Path) -> list[Mutant]:
    found = []
    for meta in meta_files(work):
        module = str(meta.relative_to(work / "mutants"))[: -len(".meta")]
        data = json.loads(meta.read_text())
        for name, code in data["exit_code_by_key"].items():
            function = name.partition("__mutmut_")[0].rpartition(".")[2]
            found.append(Mutant(name, module, function, code))
    return found


def _stats(work: Path) -> dict[str, list[str]]:
    try:
        data = json.loads((work / "mutants" / "mutmut-stats.json").read_text())
    except (OSError, ValueError):
        return {}
    tests: dict[str, list[str]] = data.get("tests_by_mangled_function_name", {})
    return tests


def _file_digests(work: Path, tests: set[str]) -> dict[str, str]:
    files = {t.split("::")[0] for t in tests}
    out = {}
    for name in sorted(files):
        path = work / name
        out[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "gone"
    return out


def current_keys(work: Path) -> dict[str, str]:
    """The key each mutant's verdict would be recorded with now."""
    coverage = _stats(work)
    keys: dict[str, str] = {}
    digests = _file_digests(work, {t for tests in coverage.values() for t in tests})
    for meta in meta_files(work):
        data = json.loads(meta.read_text())
        hashes: dict[str, str] = data.get("hash_by_function_name", {})
        for name in data["exit_code_by_key"]:
            mangled = name.partition("__mutmut_")[0]
            function = mangled.rpartition(".")[2]
            tests = sorted(coverage.get(mangled, []))
            files = sorted({t.split("::")[0] for t in tests})
            text = json.dumps([hashes.get(function, ""), tests, [digests[f] for f in files]])
            keys[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return keys


def undecided(work: Path) -> set[str]:
    return {m.name for m in mutants(work) if m.exit_code is None}


def reset_stale(work: Path, everything: bool = False, survivors: bool = False) -> int:
    """Reset the survivors whose tests changed (every survivor, or every verdict); how many
    were reset."""
    recorded = _load_keys(work)
    now = current_keys(work)
    coverage = _stats(work)
    reset: set[str] = set()
    for meta in meta_files(work):
        data = json.loads(meta.read_text())
        dirty = False
        for name, code in data["exit_code_by_key"].items():
            if code is None:
                continue
            # A verdict without a recorded key was made by a run stopped before it recorded
            # keys: its tests cannot be known to be the same, so a survivor is tried again
            # (the last stop's survivors outlived the tests written for them this way).
            stale = recorded.get(name) != now.get(name)
            # "No test reaches it" is wrong as soon as one does, whatever key was recorded
            # (a run stopped between mapping the new tests and trying the mutant).
            reached = code in NO_TESTS and bool(coverage.get(name.partition("__mutmut_")[0]))
            if everything or reached or (code in RETRIED and (stale or survivors)):
                data["exit_code_by_key"][name] = None
                dirty = True
                reset.add(name)
        if dirty:
            meta.write_text(json.dumps(data, indent=4))
    _save_keys(work, {k: v for k, v in recorded.items() if k not in reset})
    return len(reset)


def record_keys(work: Path, undecided_before: set[str]) -> None:
    """Record the key of each verdict made by the last run (or never recorded)."""
    recorded = _load_keys(work)
    now = current_keys(work)
    keys = {}
    for m in mutants(work):
        if m.exit_code is None:
            continue
        fresh = m.name in undecided_before or m.name not in recorded
        keys[m.name] = now[m.name] if fresh else recorded[m.name]
    _save_keys(work, keys)


def _save_keys(work: Path, keys: dict[str, str]) -> None:
    (work / KEYS_FILE).write_text(json.dumps(keys, indent=0, sort_keys=True))


def _load_keys(work: Path) -> dict[str, str]:
    try:
        keys: dict[str, str] = json.loads((work / KEYS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return keys


def forget_changed_tests(work: Path, changed: list[Path]) -> int:
    """Make mutmut map the tests of changed test files to functions again: it re-runs
    its coverage pass for test names it does not know. How many test names it forgot."""
    stats_path = work / "mutants" / "mutmut-stats.json"
    files = {str(p) for p in changed if p.parts[0] == "tests"}
    if not files or not stats_path.is_file():
        return 0
    stats = json.loads(stats_path.read_text())
    gone = {t for t in stats["duration_by_test"] if t.split("::")[0] in files}
    for t in gone:
        del stats["duration_by_test"][t]
    for name, tests in stats["tests_by_mangled_function_name"].items():
        stats["tests_by_mangled_function_name"][name] = [t for t in tests if t not in gone]
    stats_path.write_text(json.dumps(stats, indent=4))
    return len(gone)
