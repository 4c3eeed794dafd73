"""Which recipes a change touches: the CI matrix of images to build.

A recipe's project inputs are the files whose content can change its image:
the recipe itself, the fragments it includes, and the project files its
Containerfile reads from the build context (`Rendering.sources`: copied files,
scripts, kernel-module files, stage files). A recipe is in the matrix when one
of them changed since a revision; the base reference lives in the recipe or a
fragment, so a changed base is a changed input too. Without a revision, or one
git does not know, every recipe is in it: building too much is safe, building
too little is not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import BadInputError
from nestcustom.recipe.includes import include_files
from nestcustom.recipe.model import Recipe


@dataclass(frozen=True)
class Input:
    path: str  # project-relative POSIX path
    kind: str  # "recipe", "include", "file" (a copied file, script or module file)


@dataclass(frozen=True)
class Entry:
    """One recipe of the matrix and why it is there."""

    name: str
    recipe: str  # project-relative path of the recipe
    reasons: tuple[str, ...]  # "include recipes/common/x.yaml changed", ...


@dataclass(frozen=True)
class Matrix:
    entries: tuple[Entry, ...]
    since: str | None  # the revision compared against, None: every recipe
    note: str = ""  # why every recipe is in it, when it is


def recipe_inputs(recipe: Recipe, project: Path) -> tuple[Input, ...]:
    """Every project file whose content shapes `recipe`'s image."""
    inputs = [Input(recipe.path, "recipe")]
    inputs += [Input(p, "include") for p in include_files(project / recipe.path, project)]
    rendering = render_containerfile(recipe, f"containerfiles/{recipe.name}")
    inputs += [Input(p, "file") for p in rendering.sources]
    return tuple(dict.fromkeys(inputs))


def changed_files(project: Path, since: str) -> frozenset[str] | None:
    """Project-relative paths changed since `since` (committed, staged, unstaged or new).

    None when `since` is not a revision git knows here (a shallow clone, a first
    push, a deleted branch), or the project is not in a git work tree.
    """
    git = ["git", "-C", str(project)]
    top = proc.run([*git, "rev-parse", "--show-toplevel"], check=False, timeout=30)
    if top.returncode != 0:
        return None
    known = proc.run(
        [*git, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}"], check=False, timeout=30
    )
    if known.returncode != 0:
        return None
    # Against the merge base, as a pull request shows it: what the branch changed.
    base = proc.run([*git, "merge-base", since, "HEAD"], check=False, timeout=30)
    start = base.stdout.strip() if base.returncode == 0 else known.stdout.strip()
    diff = proc.run(
        [*git, "diff", "--name-only", "--no-renames", "-z", start, "--", "."], timeout=60
    )
    new = proc.run(
        [*git, "ls-files", "--others", "--exclude-standard", "-z", "--", "."], timeout=60
    )
    root = Path(top.stdout.strip()).resolve()
    prefix = project.resolve().relative_to(root).as_posix()
    names = set(filter(None, diff.stdout.split("\0")))
    # diff names are relative to the top of the work tree, ls-files to the project.
    in_project = {
        n.removeprefix(f"{prefix}/") if prefix != "." else n
        for n in names
        if prefix == "." or n.startswith(f"{prefix}/")
    }
    in_project.update(filter(None, new.stdout.split("\0")))
    return frozenset(in_project)


def change_matrix(recipes: Sequence[Recipe], project: Path, since: str | None) -> Matrix:
    """The recipes to build for a change since `since`, with the inputs that changed."""
    changed = changed_files(project, since) if since else None
    if changed is None:
        note = (
            "no revision given"
            if not since
            else f"{since!r} is not a revision of this git repository (or not a git repository)"
        )
        entries = [Entry(r.name, r.path, ("every recipe: " + note,)) for r in recipes]
        return Matrix(tuple(entries), None, note)
    chosen = []
    for recipe in recipes:
        reasons = tuple(
            reason for item in recipe_inputs(recipe, project) if (reason := _changed(item, changed))
        )
        if reasons:
            chosen.append(Entry(recipe.name, recipe.path, reasons))
    return Matrix(tuple(chosen), since)


def _changed(item: Input, changed: frozenset[str]) -> str:
    """Why `item` counts as changed ("" when it does not).

    A source may be a directory (`files: [{src: files/tree, ...}]` copies a whole
    tree): a change to any file below it changes the image, and git names only
    the files.
    """
    if item.path in changed:
        return f"{item.kind} {item.path} changed"
    below = sorted(path for path in changed if path.startswith(item.path.rstrip("/") + "/"))
    if below:
        more = f" and {len(below) - 1} more" if len(below) > 1 else ""
        return f"{item.kind} {item.path}/ changed: {below[0]}{more}"
    return ""


def matrix_json(matrix: Matrix) -> str:
    """GitHub Actions' matrix shape: {"include": [{"name": ..., "recipe": ...}, ...]}."""
    return json.dumps(
        {"include": [{"name": e.name, "recipe": e.recipe} for e in matrix.entries]},
        separators=(",", ":"),
    )


def format_matrix(matrix: Matrix, fmt: str) -> str:
    """json (the matrix with reasons), github ($GITHUB_OUTPUT lines), gitlab (a dotenv report)."""
    if fmt == "github":
        return f"matrix={matrix_json(matrix)}\ncount={len(matrix.entries)}\n"
    if fmt == "gitlab":
        # GitLab takes computed values for later jobs as a dotenv report, one line per value.
        spaced = [
            e.recipe for e in matrix.entries if any(c.isspace() or c in "'\"$" for c in e.recipe)
        ]
        if spaced:
            raise BadInputError(
                f"{spaced[0]}: a recipe path with blanks or quotes cannot be passed in a dotenv list",
                "rename the recipe file (its name: can stay as it is)",
            )
        recipes = " ".join(e.recipe for e in matrix.entries)
        names = " ".join(e.name for e in matrix.entries)
        return (
            f"NESTCUSTOM_RECIPES={recipes}\nNESTCUSTOM_NAMES={names}\n"
            f"NESTCUSTOM_COUNT={len(matrix.entries)}\n"
        )
    return json.dumps(matrix_document(matrix), indent=2) + "\n"


def matrix_document(matrix: Matrix) -> dict[str, object]:
    """The matrix with the reason each recipe is in it (`--format json`)."""
    return {
        "since": matrix.since,
        "note": matrix.note or None,
        "include": [
            {"name": e.name, "recipe": e.recipe, "reasons": list(e.reasons)} for e in matrix.entries
        ],
    }
