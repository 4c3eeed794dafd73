"""The scratch copy of the project a mutation run works in, kept between runs.

Only files whose content changed are copied again (with a new mtime: mutmut regenerates
the mutants of a module newer than its mutated copy, and keeps the verdicts of the
functions whose text did not change). Files gone from the project are removed from the
copy and from mutmut's tree, with their results.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# The project as git sees it (tracked and new files, not the ignored ones), but bench/:
# nothing a test runs imports it, and its edits must not count as changes of the product.
SKIPPED = ("bench", "pyproject.toml")  # the run writes its own pyproject.toml


def project_files(root: Path = ROOT) -> Iterator[Path]:
    """Every file of the project a run copies, relative to `root`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in sorted(set(listed.split("\0")) - {""}):
        rel = Path(name)
        if rel.parts[0] not in SKIPPED and (root / rel).is_file():
            yield rel


def top_levels(root: Path = ROOT) -> list[str]:
    """The project's top-level files and directories a run copies."""
    return sorted({rel.parts[0] for rel in project_files(root)})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync(work: Path, root: Path = ROOT) -> list[Path]:
    """Bring `work` up to date with the project; the files that changed (relative)."""
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(project_files(root))
    changed: list[Path] = []
    for rel in sorted(wanted):
        source, target = root / rel, work / rel
        if target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)  # a fresh mtime: newer than its mutants
        shutil.copymode(source, target)
        changed.append(rel)
        # mutmut copies data files (the schema, the build helper, templates) into its tree
        # once and never again: keep its copy current.
        if rel.parts[0] == "nestcustom" and rel.suffix != ".py":
            mutated = work / "mutants" / rel
            mutated.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, mutated)
            shutil.copymode(source, mutated)
    for rel in sorted(set(_copied(work)) - wanted):
        (work / rel).unlink()
        for leftover in (
            rel,
            rel.with_name(rel.name + ".meta"),
            rel.with_name(rel.name + ".spans"),
        ):
            (work / "mutants" / leftover).unlink(missing_ok=True)
        changed.append(rel)
    # mutmut copies tests/ and the also_copy paths afresh on every run, but never removes
    # what is gone: start those from nothing.
    for name in top_levels(root):
        if name != "nestcustom" and (root / name).is_dir():
            shutil.rmtree(work / "mutants" / name, ignore_errors=True)
    return changed


def differences(work: Path, root: Path = ROOT) -> list[Path]:
    """The project's files whose content differs from `work`'s copy (nothing is copied)."""
    return [
        rel
        for rel in project_files(root)
        if not (work / rel).is_file() or (work / rel).read_bytes() != (root / rel).read_bytes()
    ]


def _copied(work: Path) -> Iterator[Path]:
    """The files an earlier sync copied into `work` (not mutmut's or the run's own)."""
    own = {"mutants", "support", "hits", "tmp", "pyproject.toml"}
    for path in work.rglob("*"):
        rel = path.relative_to(work)
        mine = rel.parts[0] in own or rel.name.startswith(("nc-", "mutmut", "summary"))
        if path.is_file() and not mine and "__pycache__" not in rel.parts:
            yield rel
