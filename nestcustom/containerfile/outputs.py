"""The rendered tree: every recipe in recipes/ -> containerfiles/<name>/, kept fresh.

`plan_outputs` computes what the tree should hold (pure apart from reading the
recipes); `find_drift` compares it with the disk for `render --all --check`;
`write_outputs` brings the disk in line, touching only files that changed and
removing only files nestcustom itself generated.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from nestcustom.containerfile.render import GENERATED_MARK, render_containerfile
from nestcustom.containerfile.signing import POLICY_FILE
from nestcustom.containerfile.steps import HELPER_FILE
from nestcustom.errors import BadInputError, Location, Problem, RecipeError
from nestcustom.recipe.load import LoadedRecipe, load_recipe

CONTAINERFILE = "Containerfile"


@dataclass(frozen=True)
class Output:
    path: Path  # absolute
    content: str


@dataclass(frozen=True)
class Plan:
    out_dir: Path
    outputs: tuple[Output, ...]
    warnings: tuple[Problem, ...]


class DriftKind(str, Enum):
    MISSING = "missing"
    STALE = "stale"
    ORPHAN = "not produced by any recipe"
    FOREIGN = "in the way: not written by nestcustom, so render --all will not overwrite it"


@dataclass(frozen=True)
class Drift:
    path: Path
    kind: DriftKind


def find_recipes(recipes_dir: Path) -> list[Path]:
    """Recipes are the *.yaml and *.yml files directly in the directory.

    Sub-directories hold fragments for `include:` (e.g. recipes/common/).
    """
    if not recipes_dir.is_dir():
        raise BadInputError(f"{recipes_dir}: no such directory", "pass --recipes DIR")
    found = sorted(
        p for p in recipes_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
    )
    if not found:
        raise BadInputError(f"{recipes_dir}: no recipes (*.yaml) found")
    return found


def project_holding_recipes(start: Path) -> Path | None:
    """The nearest directory at or above `start` that holds a recipes/ directory."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "recipes").is_dir():
            return directory
    return None


def load_recipes(paths: Iterable[Path], project: Path | None) -> list[LoadedRecipe]:
    """Load every recipe; raise one RecipeError with every problem of every file."""
    loaded: list[LoadedRecipe] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            loaded.append(load_recipe(path, project))
        except RecipeError as exc:
            problems.extend(exc.problems)
    first_by_name: dict[str, LoadedRecipe] = {}
    for item in loaded:
        if item.recipe.name == HELPER_FILE:
            problems.append(
                Problem(
                    Location(item.recipe.path, 1, 1),
                    "name",
                    f"image name {item.recipe.name!r} is the name of the build helper every "
                    "recipe shares in the rendered tree",
                    "choose another name",
                    code="reserved",
                )
            )
        other = first_by_name.setdefault(item.recipe.name, item)
        if other is not item:
            problems.append(
                Problem(
                    Location(item.recipe.path, 1, 1),
                    "name",
                    f"image name {item.recipe.name!r} is also used by {other.recipe.path}",
                    "every recipe needs its own name: it names the rendered directory and the image",
                    code="duplicate",
                )
            )
    if problems:
        warnings = [w for item in loaded for w in item.warnings]
        raise RecipeError(problems + warnings)
    return loaded


def plan_outputs(recipes: list[LoadedRecipe], project: Path, out_dir: Path) -> Plan:
    if not out_dir.is_relative_to(project):
        # COPY sources are relative to the project, the build context: no context would
        # hold both a Containerfile out there and the files it copies.
        raise BadInputError(
            f"{out_dir}: the output directory is outside the project directory {project}",
            "write the containerfiles inside the project, or pass --project DIR to name it",
        )
    outputs: dict[Path, Output] = {}
    for item in recipes:
        target = out_dir / item.recipe.name
        context = target.relative_to(project).as_posix()
        rendering = render_containerfile(item.recipe, context)
        outputs[target / CONTAINERFILE] = Output(target / CONTAINERFILE, rendering.containerfile)
        for file in rendering.files:  # a shared file (the build helper) is written once
            outputs[project / file.path] = Output(project / file.path, file.content)
    warnings = tuple(w for item in recipes for w in item.warnings)
    return Plan(out_dir, tuple(outputs.values()), warnings)


def _written_by_us(path: Path) -> bool:
    """Whether nestcustom wrote `path`: only such a file is ever overwritten or removed.

    Generated files start with the generated mark, scripts on the line after their #!.
    policy.json is JSON, with no room for one (containers/image refuses unknown keys): it
    is ours beside a Containerfile that carries the mark, where `render --all` puts it.
    """
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(len(GENERATED_MARK))
            if head.startswith("#!"):
                handle.seek(0)
                handle.readline(4096)
                head = handle.read(len(GENERATED_MARK))
            if head == GENERATED_MARK:
                return True
    except OSError:
        return False
    return path.name == POLICY_FILE and _written_by_us(path.parent / CONTAINERFILE)


def _generated_files(out_dir: Path) -> list[Path]:
    if not out_dir.is_dir():
        return []
    return [p for p in sorted(out_dir.rglob("*")) if p.is_file() and _written_by_us(p)]


def find_drift(plan: Plan) -> list[Drift]:
    drift: list[Drift] = []
    wanted = {o.path for o in plan.outputs}
    for output in plan.outputs:
        if not output.path.is_file():
            drift.append(Drift(output.path, DriftKind.MISSING))
        elif output.path.read_text("utf-8", errors="replace") != output.content:
            ours = _written_by_us(output.path)
            drift.append(Drift(output.path, DriftKind.STALE if ours else DriftKind.FOREIGN))
    drift.extend(
        Drift(p, DriftKind.ORPHAN) for p in _generated_files(plan.out_dir) if p not in wanted
    )
    return drift


def write_outputs(plan: Plan) -> list[Drift]:
    """Bring the disk in line with the plan; return what was changed.

    A file in the way that nestcustom did not write (a user's own Containerfile where a
    recipe's goes) stops the run before anything is written.
    """
    changes = find_drift(plan)
    foreign = [c.path for c in changes if c.kind is DriftKind.FOREIGN]
    if foreign:
        raise BadInputError(
            f"{len(foreign)} file(s) where render --all writes were not written by nestcustom: "
            + ", ".join(str(p) for p in foreign),
            "move them away (or rename the recipe whose output goes there); nothing was written",
        )
    contents = {o.path: o.content for o in plan.outputs}
    for change in changes:
        if change.kind is DriftKind.ORPHAN:
            change.path.unlink()
            _remove_empty_parents(change.path.parent, plan.out_dir)
        else:
            write_atomically(change.path, contents[change.path])
    return changes


def write_atomically(path: Path, content: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_relative_to(stop) and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
