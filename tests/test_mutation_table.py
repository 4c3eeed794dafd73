"""The mutation runs' table (bench/mutation/packages.py) covers the whole product: every
module under nestcustom/ in exactly one package, and every universe test it names exists
(a renamed test file would otherwise quietly stop killing mutants)."""

from __future__ import annotations

from pathlib import Path

from bench.mutation.packages import PACKAGES

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_is_in_exactly_one_package() -> None:
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "nestcustom").rglob("*.py"))
    owners = {m: [p.name for p in PACKAGES.values() if p.owns(m)] for m in modules}
    assert {m: o for m, o in owners.items() if len(o) != 1} == {}


def test_every_named_universe_test_exists() -> None:
    named = {t for p in PACKAGES.values() for t in p.universe}
    assert sorted(t for t in named if not (ROOT / t).is_file()) == []


def test_every_deselected_test_exists() -> None:
    """A renamed golden test would otherwise count as a kill of every mutant it notices."""
    from bench.mutation.packages import NOT_FAST

    files = {t.split("::")[0] for t in NOT_FAST}
    assert sorted(f for f in files if not (ROOT / f).is_file()) == []
    for test in (t for t in NOT_FAST if "::" in t):
        path, name = test.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(), test
