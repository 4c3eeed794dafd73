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


def test_the_sample_takes_every_module_and_is_stable() -> None:
    """Every module gives at least FLOOR mutants (all it has if fewer), the rest is shared
    by size, and the choice depends on the names only: a mutant added to one module moves
    nothing in another."""
    from bench.mutation.sample import FLOOR, choose

    names = {
        "nestcustom/fleet/big.py": [f"nestcustom.fleet.big.x_f__mutmut_{i}" for i in range(900)],
        "nestcustom/fleet/small.py": [f"nestcustom.fleet.small.x_g__mutmut_{i}" for i in range(5)],
        "nestcustom/fleet/one.py": ["nestcustom.fleet.one.x_h__mutmut_1"],
        "nestcustom/errors.py": [f"nestcustom.errors.x_e__mutmut_{i}" for i in range(40)],
    }
    chosen = choose(names, 100)
    fleet = chosen["fleet"]
    assert sum(n.startswith("nestcustom.fleet.small.") for n in fleet) == FLOOR
    assert sum(n.startswith("nestcustom.fleet.one.") for n in fleet) == 1
    assert sum(n.startswith("nestcustom.fleet.big.") for n in fleet) == 99
    assert len(chosen["ground"]) == 40  # fewer than asked: all of them
    grown = {**names, "nestcustom/errors.py": names["nestcustom/errors.py"] + ["x"]}
    assert choose(grown, 100)["fleet"] == fleet
    assert choose(names, 100) == chosen


def test_the_sample_interval_is_wilsons() -> None:
    from bench.mutation.sample import wilson

    low, high = wilson(135, 150)  # 90%: 84.2-93.8 (Wilson, z = 1.96, worked by hand)
    assert (round(low, 1), round(high, 1)) == (84.2, 93.8)
    assert wilson(0, 0) == (0.0, 100.0)
    assert wilson(10, 10)[1] == 100.0
