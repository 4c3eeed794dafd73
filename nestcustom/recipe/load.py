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

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from nestcustom.errors import BadInputError, Location, Problem, RecipeError, Severity
from nestcustom.recipe import lint
from nestcustom.recipe.model import (
    Base,
    CommandCheck,
    FileCheck,
    FileSpec,
    Flavor,
    Layer,
    Recipe,
    Repo,
    RpmOstreeVersion,
    Swap,
    Tests,
)
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
        try:
            return os.path.relpath(path)
        except ValueError:  # pragma: no cover - other drive on Windows
            return str(path)

    def add(self, location: Location, path: Path_, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(location, format_path(path), message, hint, code="include"))


Path_ = tuple[str | int, ...]


def find_project_root(recipe: Path) -> Path:
    """The directory recipes' paths are relative to and the build context.

    It is the parent of the nearest enclosing `recipes` directory (the layout
    `nestcustom` documents), else the recipe's own directory.
    """
    resolved = recipe.resolve()
    for parent in resolved.parents:
        if parent.name == "recipes":
            return parent.parent
    return resolved.parent


def load_recipe(path: Path, project: Path | None = None) -> LoadedRecipe:
    """Load, validate and lint one recipe; raise RecipeError with every error found."""
    project = (project or find_project_root(path)).resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(project):
        raise BadInputError(
            f"{path}: the recipe is outside the project directory {project}",
            "run nestcustom from the project root or pass --project",
        )
    if not resolved.is_file():
        raise BadInputError(f"{path}: no such recipe file", "pass the path of a .yaml recipe")
    ctx = _Context(project)
    doc = _load_tree(ctx, resolved, ())
    problems = ctx.problems
    if doc is not None and not any(p.severity is Severity.ERROR for p in problems):
        problems.extend(validate_document(doc, Location(ctx.display(resolved), 1, 1)))
    if doc is None or any(p.severity is Severity.ERROR for p in problems):
        raise RecipeError(_sorted(problems))
    recipe = _build(ctx, doc, resolved)
    problems.extend(lint.lint_recipe(recipe, _Locator(doc, Location(ctx.display(resolved), 1, 1))))
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
        where = includes.item_origins[index].location
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
    out = YamlMap(over.origin)
    for key in (*base.keys(), *(k for k in over if k not in base)):
        if key in over and key in base:
            a, b = base[key], over[key]
            if isinstance(a, YamlMap) and isinstance(b, YamlMap):
                value: Any = merge(a, b)
            elif isinstance(a, YamlList) and isinstance(b, YamlList):
                value = YamlList(b.origin)
                value.extend(a)
                value.extend(b)
                value.item_origins.extend(a.item_origins + b.item_origins)
            else:
                value = b
            source = over
        else:
            source = base if key in base else over
            value = source[key]
        out[key] = value
        out.key_origins[key] = source.key_origins[key]
        out.value_origins[key] = source.value_origins[key]
    return out


def _build(ctx: _Context, doc: YamlMap, path: Path) -> Recipe:
    """Turn a schema-valid document into the frozen Recipe (file contents hashed here)."""
    base = doc["base"]
    layers = tuple(
        Layer(
            name=layer["name"],
            description=layer.get("description", ""),
            install=tuple(layer.get("install", ())),
            remove=tuple(layer.get("remove", ())),
            replace=tuple(layer.get("replace", ())),
            swap=tuple(Swap(s["remove"], s["install"]) for s in layer.get("swap", ())),
            origin=str(doc["layers"].item_origins[index].location),
        )
        for index, layer in enumerate(doc["layers"])
    )
    repos = tuple(
        Repo(
            id=r["id"],
            name=r.get("name"),
            baseurl=r.get("baseurl"),
            metalink=r.get("metalink"),
            mirrorlist=r.get("mirrorlist"),
            gpgcheck=r.get("gpgcheck", True),
            gpgkey=r.get("gpgkey"),
            enabled=r.get("enabled", True),
        )
        for r in doc.get("repos", ())
    )
    files_doc = doc.get("files", YamlList(doc.origin))
    files = tuple(
        spec
        for index, entry in enumerate(files_doc)
        if (spec := _file_spec(ctx, entry, files_doc.item_origins[index], index)) is not None
    )
    systemd = doc.get("systemd", {})
    tests = doc.get("tests", {})
    packages = tests.get("packages", {})
    units = tests.get("units", {})
    return Recipe(
        path=path.relative_to(ctx.project).as_posix(),
        name=doc["name"],
        description=doc.get("description", ""),
        arch=doc.get("arch"),
        base=Base(
            image=base["image"],
            digest=base.get("digest"),
            flavor=Flavor(base.get("flavor", "nestos")),
            rpm_ostree=RpmOstreeVersion.parse(base.get("rpm-ostree", "2022.16")),
        ),
        layers=layers,
        repos=repos,
        files=files,
        units_enable=tuple(systemd.get("enable", ())),
        units_disable=tuple(systemd.get("disable", ())),
        labels=tuple(sorted(doc.get("labels", {}).items())),
        tests=Tests(
            present=tuple(packages.get("present", ())),
            absent=tuple(packages.get("absent", ())),
            files=tuple(
                FileCheck(f["path"], f.get("exists", True), f.get("mode"), f.get("contains"))
                for f in tests.get("files", ())
            ),
            commands=tuple(
                CommandCheck(
                    tuple(c["run"]), c.get("exit", 0), c.get("stdout"), float(c.get("timeout", 60))
                )
                for c in tests.get("commands", ())
            ),
            units_enabled=tuple(units.get("enabled", ())),
            units_disabled=tuple(units.get("disabled", ())),
        ),
    )


def _file_spec(ctx: _Context, entry: YamlMap, origin: Origin, index: int) -> FileSpec | None:
    """Resolve `src` against the project root (the build context); it must be a file there."""
    src_origin = entry.value_origins.get("src", origin)
    source = (ctx.project / entry["src"]).resolve()
    path = ("files", index, "src")
    if not source.is_relative_to(ctx.project):
        ctx.add(src_origin.location, path, f"{entry['src']!r} points outside the project directory")
        return None
    if not source.is_file():
        ctx.add(
            src_origin.location, path, f"{entry['src']!r} is not a file", f"looked for {source}"
        )
        return None
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    mode = entry.get("mode", "0644")
    return FileSpec(
        src=PurePosixPath(source.relative_to(ctx.project).as_posix()).as_posix(),
        dest=entry["dest"],
        mode=mode if len(mode) == 4 else "0" + mode,
        sha256=digest,
    )
