"""The package's layout holds: imports point down the data flow, no cycles, small modules.

See ../shared/design/architecture.md: recipe -> containerfile -> image ->
(base | gitops | deploy), on the shared ground of errors, proc and git; the CLI
sits on top and nothing imports it. The checks are plain functions, tested on
small made-up graphs too, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "nestcustom"
MAX_LINES = 500

# A stage may import its own stage and any stage of a lower rank; stages of the same
# rank other than its own are off limits (base, gitops and deploy stay apart).
RANK = {
    "": 0,  # errors, proc, git: the shared ground
    "recipe": 1,
    "containerfile": 2,
    "image": 3,
    "base": 4,
    "gitops": 4,
    "deploy": 4,
    "fleet": 4,
    "cli": 5,
    "__main__": 6,
}

Graph = Mapping[str, frozenset[str]]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> frozenset[str]:
    """Every nestcustom module `path` imports, at any depth (also inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "nestcustom")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(here[: len(here) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module.split(".")[0] != "nestcustom":
                continue
            found.add(module)
            # `from nestcustom.image import registry` imports the module nestcustom.image.registry
            found.update(f"{module}.{a.name}" for a in node.names)
    return frozenset(found)


def package_graph() -> dict[str, frozenset[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: frozenset(m for m in imports_of(path, name) if m in paths and m != name)
        for name, path in paths.items()
    }


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else ""


def upward_imports(graph: Graph) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        own = stage(module)
        for target in targets:
            other = stage(target)
            if other == own or RANK[other] < RANK[own]:
                continue
            wrong.append(f"{module} ({own or 'shared'}) imports {target} ({other or 'shared'})")
    return sorted(wrong)


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, frozenset()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def group_imported_by_commands(graph: Graph) -> list[str]:
    """The CLI group module imports the command modules, never the other way round."""
    return sorted(m for m, targets in graph.items() if "nestcustom.cli.main" in targets)


def oversized(paths: Iterable[Path]) -> list[str]:
    return sorted(
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in paths
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    )


# -- the package --------------------------------------------------------------------------


def test_imports_point_down_the_flow() -> None:
    assert upward_imports(package_graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(package_graph()) == []


def test_commands_do_not_import_the_group() -> None:
    assert group_imported_by_commands(package_graph()) == ["nestcustom.__main__"]


def test_modules_stay_small() -> None:
    assert oversized(PACKAGE.rglob("*.py")) == []


def test_every_stage_is_a_known_room() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert rooms <= set(RANK), f"a package folder the layout does not know: {rooms - set(RANK)}"


# -- the checker itself -------------------------------------------------------------------


def test_checker_finds_an_upward_import() -> None:
    graph = {
        "nestcustom.recipe.load": frozenset({"nestcustom.image.podman"}),
        "nestcustom.deploy.rollout": frozenset({"nestcustom.gitops.plan"}),
        "nestcustom.errors": frozenset({"nestcustom.cli.common"}),
        "nestcustom.image.build": frozenset({"nestcustom.recipe.model", "nestcustom.proc"}),
    }
    assert upward_imports(graph) == [
        "nestcustom.deploy.rollout (deploy) imports nestcustom.gitops.plan (gitops)",
        "nestcustom.errors (shared) imports nestcustom.cli.common (cli)",
        "nestcustom.recipe.load (recipe) imports nestcustom.image.podman (image)",
    ]


def test_checker_finds_a_cycle() -> None:
    graph = {
        "a": frozenset({"b"}),
        "b": frozenset({"c"}),
        "c": frozenset({"a"}),
        "d": frozenset({"a"}),
    }
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_checker_resolves_relative_and_from_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        "from . import hostrun\n"
        "from ..image import registry\n"
        "def f():\n"
        "    from nestcustom.recipe.model import Recipe\n"
    )
    found = imports_of(source, "nestcustom.deploy.rollout")
    assert {
        "nestcustom.deploy.hostrun",
        "nestcustom.image.registry",
        "nestcustom.recipe.model",
    } <= found


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("nestcustom.errors", ""),
        ("nestcustom.recipe.load", "recipe"),
        ("nestcustom.cli.main", "cli"),
        ("nestcustom.__main__", "__main__"),
        ("nestcustom.recipe", "recipe"),
    ],
)
def test_stage_of_a_module(module: str, expected: str) -> None:
    assert stage(module) == expected
