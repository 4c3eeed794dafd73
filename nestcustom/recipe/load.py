"""Load a recipe: YAML with positions -> includes merged -> schema -> lints -> Recipe.

Every problem in every file is collected before anything is reported, so a
user fixes a recipe in one pass. Errors stop; warnings travel with the result.

Include merge rules (documented in the README and the schema):
- fragments are merged first, in the order listed, then the including file;
- mappings merge key by key, the later file winning for a key both set;
- lists are concatenated (fragments' items first);
- a fragment may include others; a cycle is an error.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from nestcustom.errors import BadInputError, Location, Problem, RecipeError, Severity
from nestcustom.recipe import lint
from nestcustom.recipe.convert import Converter
from nestcustom.recipe.model import Recipe
from nestcustom.recipe.projectfiles import ProjectFiles
from nestcustom.recipe.schema import format_path, validate_document
from nestcustom.recipe.source import Origin, YamlList, YamlMap, child_origin, load_yaml


@dataclass(frozen=True)
class LoadedRecipe:
    recipe: Recipe
    warnings: tuple[Problem, ...] = ()


@dataclass
class _Context:
    """Mutable state of one load: the files read so far and what was found."""

    project: Path
    problems: list[Problem] = field(default_factory=list)

    def display(self, path: Path) -> str:
        return _relative_to_cwd(str(path), os.getcwd())  # noqa: PTH109 - a str key, not a Path

    def add(self, location: Location, path: Path_, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(location, format_path(path), message, hint, code="include"))


Path_ = tuple[str | int, ...]


@lru_cache(maxsize=4096)
def _relative_to_cwd(path: str, cwd: str) -> str:
    """How messages name a file: relative to where the user stands (computed once per file)."""
    return os.path.relpath(path, cwd)


def find_project_root(recipe: Path) -> Path:
    """The directory recipes' paths are relative to and the build context.

    It is the parent of the nearest enclosing `recipes` directory (the layout
    `nestcustom` documents), else the recipe's own directory. Found from where the
    recipe is named, not where a symlink points: a link to a file elsewhere must
    not move the project there (load_recipe refuses such a link).
    """
    return _resolved(_project_of(Path(os.path.abspath(recipe)).parent))  # noqa: PTH100


@lru_cache(maxsize=256)
def _project_of(directory: Path) -> Path:
    for parent in (directory, *directory.parents):
        if parent.name == "recipes":
            return parent.parent
    return directory


@lru_cache(maxsize=256)
def _resolved(directory: Path) -> Path:
    return directory.resolve()


def _resolve_file(path: Path) -> tuple[Path, bool]:
    """`path.resolve()`, and whether that is a regular file.

    Resolving walks every directory of the path (an lstat each); the recipes of one run
    share their directories, so a directory's real path is resolved once and only the
    file itself is looked at (one lstat, which also says whether it is a file). A symlink
    loop is no file (Path.resolve raised for it).
    """
    if ".." in path.parts:  # `..` after a symlink is not lexical: resolve it all
        resolved = Path(os.path.realpath(path))
        return resolved, resolved.is_file()
    directory, name = os.path.split(os.path.abspath(path))  # noqa: PTH100 - a str, for speed
    candidate = os.path.join(_real_directory(directory), name)  # noqa: PTH118
    try:
        mode = os.lstat(candidate).st_mode
    except OSError:
        return Path(candidate), False
    if stat.S_ISLNK(mode):
        resolved = Path(os.path.realpath(candidate))
        return resolved, resolved.is_file()
    return Path(candidate), stat.S_ISREG(mode)


def _relative_posix(path: str, root: str) -> str | None:
    """`Path(path).relative_to(root).as_posix()` for resolved POSIX paths, None if outside."""
    if path == root:
        return "."
    prefix = root if root.endswith("/") else root + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


@lru_cache(maxsize=256)
def _real_directory(directory: str) -> str:
    return os.path.realpath(directory)


def load_recipe(path: Path, project: Path | None = None) -> LoadedRecipe:
    """Load, validate and lint one recipe; raise RecipeError with every error found."""
    resolved, is_file = _resolve_file(path)
    project = _resolved(project) if project else find_project_root(path)
    relative = _relative_posix(str(resolved), str(project))
    if relative is None:
        if str(resolved) != os.path.abspath(path):  # noqa: PTH100 - a link (or a linked directory)
            raise BadInputError(
                f"{path}: the recipe is a link to {resolved}, outside the project directory "
                f"{project}",
                "every file a recipe builds from must be inside the project: copy the recipe "
                "into it (or include a fragment that is)",
            )
        raise BadInputError(
            f"{path}: the recipe is outside the project directory {project}",
            "run nestcustom from the project root or pass --project",
        )
    if not is_file:
        raise BadInputError(f"{path}: no such recipe file", "pass the path of a .yaml recipe")
    ctx = _Context(project)
    doc = _load_tree(ctx, resolved, ())
    problems = ctx.problems
    start = Location(ctx.display(resolved), 1, 1)
    if doc is not None and not any(p.severity is Severity.ERROR for p in problems):
        problems.extend(validate_document(doc, start))
    if doc is None or any(p.severity is Severity.ERROR for p in problems):
        raise RecipeError(_sorted(problems))
    files = ProjectFiles(project)
    recipe = Converter(doc, files).recipe(relative)
    problems.extend(files.problems)
    problems.extend(lint.lint_recipe(recipe, _Locator(doc, start)))
    if any(p.severity is Severity.ERROR for p in problems):
        raise RecipeError(_sorted(problems))
    return LoadedRecipe(recipe, tuple(_sorted(problems)))


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.location.file, p.location.line, p.location.column))


class _Locator:
    """Maps a path in the merged recipe to where it was written (for lints)."""

    def __init__(self, doc: YamlMap, fallback: Location) -> None:
        self.doc = doc
        self.fallback = fallback

    def __call__(self, *path: str | int) -> Location:
        node: Any = self.doc
        best: Origin | None = self.doc.origin
        for step in path:
            found = child_origin(node, step)
            if found is None:
                break
            best = found
            node = node[step]
        return best.location if best else self.fallback


def _load_tree(ctx: _Context, path: Path, stack: tuple[Path, ...]) -> YamlMap | None:
    name = ctx.display(path)
    doc, problems = load_yaml(path, name)
    ctx.problems.extend(problems)
    if doc is None:
        return None
    if not isinstance(doc, YamlMap):
        ctx.add(
            Location(name, 1, 1),
            (),
            "a recipe must be a mapping of keys (name:, base:, layers: ...)",
        )
        return None
    includes = doc.get("include")
    if not isinstance(includes, YamlList):
        return doc  # absent, or wrong: the schema will say so
    merged: YamlMap | None = None
    for index, item in enumerate(includes):
        where = includes.item_origin(index).location
        if not isinstance(item, str):
            continue  # the schema reports it
        target = (path.parent / item).resolve()
        if not target.is_relative_to(ctx.project):
            ctx.add(where, ("include", index), f"{item!r} is outside the project directory")
            continue
        if target in (*stack, path):
            chain = " -> ".join(ctx.display(p) for p in (*stack, path, target))
            ctx.add(
                where, ("include", index), f"include cycle: {chain}", "remove one of these includes"
            )
            continue
        if not target.is_file():
            ctx.add(where, ("include", index), f"included file {item!r} does not exist")
            continue
        fragment = _load_tree(ctx, target, (*stack, path))
        if fragment is not None:
            merged = fragment if merged is None else merge(merged, fragment)
    return doc if merged is None else merge(merged, doc)


def merge(base: YamlMap, over: YamlMap) -> YamlMap:
    """`over` on top of `base`: mappings key by key, lists concatenated, scalars replaced."""
    out = YamlMap(over.node)
    for key in (*base.keys(), *(k for k in over if k not in base)):
        if key in over and key in base:
            a, b = base[key], over[key]
            if isinstance(a, YamlMap) and isinstance(b, YamlMap):
                value: Any = merge(a, b)
            elif isinstance(a, YamlList) and isinstance(b, YamlList):
                value = YamlList(b.node)
                value.extend(a)
                value.extend(b)
                value.item_nodes.extend(a.item_nodes + b.item_nodes)
            else:
                value = b
            source = over
        else:
            source = base if key in base else over
            value = source[key]
        out[key] = value
        out.key_nodes[key] = source.key_nodes[key]
        out.value_nodes[key] = source.value_nodes[key]
    return out
