"""Files of the project a recipe names (copied files, scripts, kernel modules), checked.

Each must stay inside the project (it is the build context) and be a regular
file; its content is hashed so the recipe digest changes when it does. A file
many recipes share is read once per run (the hash is keyed by its stat).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from nestcustom.errors import Location, Problem
from nestcustom.recipe.schema import format_path

Path_ = tuple[str | int, ...]
SHEBANG_LIMIT = 256  # bytes of a script read for its #! line


@dataclass(frozen=True)
class ProjectFile:
    path: str  # POSIX, relative to the project root
    sha256: str
    head: bytes  # the first bytes, for a script's #! line


@lru_cache(maxsize=4096)
def _read(path: str, size: int, mtime_ns: int, inode: int) -> tuple[str, bytes]:
    """(sha256, first bytes) of a file; keyed by its stat, so a shared file is read once."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), data[:SHEBANG_LIMIT]


@lru_cache(maxsize=4096)
def _realpath(root: Path, relative: str) -> Path:
    """Symlinks resolved; cached, since many recipes of one run name the same files."""
    return Path(os.path.realpath(root / relative))


@dataclass
class ProjectFiles:
    """Resolves project-relative paths; problems are collected, never raised."""

    root: Path
    problems: list[Problem] = field(default_factory=list)

    def find(self, relative: str, where: Location, path: Path_) -> ProjectFile | None:
        source = _realpath(self.root, relative)
        if not source.is_relative_to(self.root):
            self._add(where, path, f"{relative!r} points outside the project directory")
            return None
        try:
            info = source.stat()
            if not stat.S_ISREG(info.st_mode):
                raise IsADirectoryError
            digest, head = _read(str(source), info.st_size, info.st_mtime_ns, info.st_ino)
        except OSError:
            self._add(where, path, f"{relative!r} is not a file", f"looked for {source}")
            return None
        return ProjectFile(source.relative_to(self.root).as_posix(), digest, head)

    def find_file_or_tree(
        self, relative: str, where: Location, path: Path_
    ) -> tuple[ProjectFile, bool] | None:
        """A file, or a directory whose tree is hashed as a whole; (found, is it a tree)."""
        source = _realpath(self.root, relative.rstrip("/") or ".")
        if source.is_dir() and source.is_relative_to(self.root) and source != self.root:
            digest = _tree_digest(source)
            if digest is None:
                self._add(where, path, f"{relative!r} holds a file that cannot be read")
                return None
            return ProjectFile(source.relative_to(self.root).as_posix(), digest, b""), True
        found = self.find(relative, where, path)
        return (found, False) if found is not None else None

    def _add(self, where: Location, path: Path_, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(where, format_path(path), message, hint, code="file"))


def _tree_digest(top: Path) -> str | None:
    """sha256 over a tree's paths, kinds, executable bits, contents and link targets."""
    h = hashlib.sha256()
    try:
        for entry in sorted(top.rglob("*")):
            rel = entry.relative_to(top).as_posix().encode()
            if entry.is_symlink():
                h.update(b"l\0" + rel + b"\0" + str(entry.readlink()).encode() + b"\0")
            elif entry.is_dir():
                h.update(b"d\0" + rel + b"\0")
            else:
                info = entry.stat()
                digest, _ = _read(str(entry), info.st_size, info.st_mtime_ns, info.st_ino)
                executable = b"x" if info.st_mode & 0o111 else b"-"
                h.update(b"f\0" + rel + b"\0" + executable + digest.encode() + b"\0")
    except OSError:
        return None
    return h.hexdigest()


def interpreter(head: bytes) -> tuple[str, ...]:
    """What a script's #! line runs, read as the kernel reads it, else /bin/sh.

    The kernel takes the program and, after the first blank, the rest of the line as
    one argument: `#!/usr/bin/env bash` -> ("/usr/bin/env", "bash").
    """
    first = head.split(b"\n", 1)[0]
    text = first[2:].decode("utf-8", errors="replace").strip() if first[:2] == b"#!" else ""
    if not text:
        return ("/bin/sh",)
    return tuple(re.split(r"[ \t]+", text, maxsplit=1))
