"""The mutation run's cached verdicts: which are tried again (bench/mutation/verdicts.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.mutation import shell, verdicts, workdir

MODULE = "nestcustom/recipe/values.py"


def work_with(tmp: Path, codes: dict[str, int | None], tests: dict[str, list[str]]) -> Path:
    meta = tmp / "mutants" / f"{MODULE}.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes, "hash_by_function_name": {}}))
    (tmp / "mutants" / "mutmut-stats.json").write_text(
        json.dumps({"tests_by_mangled_function_name": tests})
    )
    (tmp / "tests").mkdir()
    (tmp / "tests" / "test_values.py").write_text("def test_it(): pass\n")
    return tmp


def codes(work: Path) -> dict[str, int | None]:
    return {m.name: m.exit_code for m in verdicts.mutants(work)}


def test_a_no_tests_verdict_is_tried_again_once_a_test_reaches_its_function(
    tmp_path: Path,
) -> None:
    reached, alone = "nestcustom.recipe.values.x_f", "nestcustom.recipe.values.x_g"
    work = work_with(
        tmp_path,
        {f"{reached}__mutmut_1": 33, f"{alone}__mutmut_1": 33, f"{reached}__mutmut_2": 1},
        {reached: ["tests/test_values.py::test_it"]},
    )
    verdicts.record_keys(work, set())  # keys recorded with the test already mapped
    assert verdicts.reset_stale(work) == 1
    assert codes(work) == {
        f"{reached}__mutmut_1": None,  # tried again
        f"{alone}__mutmut_1": 33,  # still no test
        f"{reached}__mutmut_2": 1,  # a kill stays a kill
    }


def test_a_survivor_is_tried_again_when_its_tests_change(tmp_path: Path) -> None:
    name = "nestcustom.recipe.values.x_f"
    work = work_with(tmp_path, {f"{name}__mutmut_1": 0}, {name: ["tests/test_values.py::test_it"]})
    verdicts.record_keys(work, set())
    assert verdicts.reset_stale(work) == 0
    (work / "tests" / "test_values.py").write_text("def test_it(): assert 1\n")
    assert verdicts.reset_stale(work) == 1
    assert codes(work) == {f"{name}__mutmut_1": None}


def test_a_survivor_whose_key_was_never_recorded_is_tried_again(tmp_path: Path) -> None:
    """A run stopped between a verdict and recording its key: the tests behind the
    survivor are unknown, so it must not stand for ever."""
    name = "nestcustom.recipe.values.x_f"
    work = work_with(
        tmp_path,
        {f"{name}__mutmut_1": 0, f"{name}__mutmut_2": 1},
        {name: ["tests/test_values.py::test_it"]},
    )
    assert verdicts.reset_stale(work) == 1
    assert codes(work) == {f"{name}__mutmut_1": None, f"{name}__mutmut_2": 1}


def test_a_shell_kill_stands_while_a_survivor_is_tried_again_when_the_tests_change(
    tmp_path: Path,
) -> None:
    helper = 'f() {\n    [ -n "$1" ] || exit 1\n    echo "$1"\n}\n'
    found = shell.mutants(helper)
    assert [m.kind for m in found] == ["delete", "negate", "andor", "status", "delete"]
    test = tmp_path / "test_helper.py"
    test.write_text("def test_it(): pass\n")
    verdicts: dict[str, dict[str, object]] = {}
    for m, code in zip(found, (1, 0, 5, 1, 1), strict=True):
        scoped = shell.scope(helper, m)
        verdicts[m.ident] = {"fast": code, "fast_key": shell._key(scoped, [test]),
                             "fast_mutant": shell._mutant_key(scoped)}  # fmt: skip
    assert shell.to_try(found, helper, verdicts, "fast", [test]) == []
    test.write_text("def test_it(): assert 1\n")  # the tests changed: survivors are tried
    assert shell.to_try(found, helper, verdicts, "fast", [test]) == found[1:3]
    # A kill recorded without the mutant's own key (an older run) is tried once more.
    del verdicts[found[0].ident]["fast_mutant"]
    assert shell.to_try(found, helper, verdicts, "fast", [test]) == found[:3]
    # The function changed: each of its mutants is tried again (the changed line's is new).
    changed = helper.replace('echo "$1"', 'printf "%s" "$1"')
    again = shell.to_try(shell.mutants(changed), changed, verdicts, "fast", [test])
    assert [m.ident for m in again] == [
        *(m.ident for m in found[:4]), 'f: -printf "%s" "$1" / +:',
    ]  # fmt: skip
    # Lines added above the function move it but leave it the same: only what was to be
    # tried before is (the two survivors, the kill without its own key).
    moved = "# a comment\ng() {\n    :\n}\n" + helper
    assert [m.ident for m in shell.to_try(shell.mutants(moved), moved, verdicts, "fast", [test])
            if m.function == "f"] == [m.ident for m in found[:3]]  # fmt: skip


def test_a_file_edited_after_the_copy_is_named_and_nothing_is_copied(tmp_path: Path) -> None:
    # The sample stops on it: a mutant tried by hand in the checkout while the run
    # started was once copied in and judged as the product.
    root, work = tmp_path / "root", tmp_path / "work"
    (root / "nestcustom").mkdir(parents=True)
    (root / "nestcustom" / "a.py").write_text("A = 1\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    workdir.sync(work, root)
    assert workdir.differences(work, root) == []
    (root / "nestcustom" / "a.py").write_text("A = 2\n")
    (root / "nestcustom" / "b.py").write_text("B = 1\n")
    assert workdir.differences(work, root) == [Path("nestcustom/a.py"), Path("nestcustom/b.py")]
    assert (work / "nestcustom" / "a.py").read_text() == "A = 1\n"
