"""The fragments a recipe includes, directly or through other fragments.

`load_recipe` merges fragments into one document and keeps no list of them;
tools that ask "did this recipe's sources change" (the GitOps change matrix)
need that list. The rules are the loader's: paths relative to the including
file, inside the project; a missing, unreadable or cyclic include is simply
not listed (loading the recipe reports it).
"""

from __future__ import annotations

from pathlib import Path

from nestcustom.recipe.source import YamlList, YamlMap, load_yaml


def include_files(recipe: Path, project: Path) -> tuple[str, ...]:
    """Project-relative POSIX paths of every fragment `recipe` includes, in merge order."""
    root = project.resolve()
    found: dict[Path, None] = {}

    def visit(path: Path, stack: tuple[Path, ...]) -> None:
        doc, _ = load_yaml(path)
        includes = doc.get("include") if isinstance(doc, YamlMap) else None
        if not isinstance(includes, YamlList):
            return
        for item in includes:
            if not isinstance(item, str):
                continue
            target = (path.parent / item).resolve()
            if not target.is_relative_to(root) or target in (*stack, path) or not target.is_file():
                continue
            visit(target, (*stack, path))
            found.setdefault(target)

    start = recipe.resolve()
    if start.is_file():
        visit(start, ())
    return tuple(p.relative_to(root).as_posix() for p in found)
