"""The markers scripts/test splits the suite by: a test module named *_universe.py is
marked universe (else the fast suite, and the mutation runs, would start its podman
builds), and one that starts emulated hosts (the `fleet` fixture) is marked hosts too, so
it runs in the pytest that waits on reboots beside the builds."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def _module_marks(path: Path) -> set[str]:
    """The names in the module's `pytestmark` (pytest.mark.NAME, alone or in a list)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return {
                n.attr
                for n in ast.walk(node.value)
                if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Attribute)
                and n.value.attr == "mark"
            }
    return set()


def _starts_hosts(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, ast.arg) and n.arg == "fleet" for n in ast.walk(tree))


def test_universe_modules_are_marked_and_those_with_hosts_marked_hosts() -> None:
    modules = sorted((ROOT / "tests").rglob("test_*_universe.py"))
    assert len(modules) > 30
    unmarked = [str(p.relative_to(ROOT)) for p in modules if "universe" not in _module_marks(p)]
    assert unmarked == []
    with_hosts = [p for p in modules if _starts_hosts(p)]
    assert len(with_hosts) >= 7
    unsplit = [str(p.relative_to(ROOT)) for p in with_hosts if "hosts" not in _module_marks(p)]
    assert unsplit == []


def test_the_marks_are_read_from_the_module_as_written(tmp_path: Path) -> None:
    one = tmp_path / "test_one_universe.py"
    one.write_text("import pytest\n\npytestmark = [pytest.mark.universe, pytest.mark.hosts]\n")
    assert _module_marks(one) == {"universe", "hosts"}
    one.write_text("import pytest\n\ndef test_x(fleet):\n    pass\n")
    assert (_module_marks(one), _starts_hosts(one)) == (set(), True)
