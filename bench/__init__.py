"""Benchmarks: ratios against a baseline run in the same process (see BENCHMARKS.md)."""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nestcustom"


def as_installed() -> None:
    """Byte-compile nestcustom, as `pip install` does for a user.

    A checkout run with PYTHONDONTWRITEBYTECODE (set on some CI machines and here)
    never caches bytecode, so each `nestcustom` started by a benchmark would compile
    its ~100 modules from source first: a cost no installed copy pays.
    """
    compileall.compile_dir(str(PACKAGE), quiet=1)
