"""What a mutant changes, read from mutmut's tree without parsing it (its line index)."""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path


@cache
def _spans(work: Path, module: str) -> dict[str, tuple[int, int]]:
    data = json.loads((work / "mutants" / f"{module}.spans").read_text())
    return {name: (start, end) for name, (start, end) in data["spans"].items()}


@cache
def _lines(work: Path, module: str) -> list[str]:
    return (work / "mutants" / module).read_text().splitlines()


def _function(work: Path, module: str, name: str) -> list[str]:
    start, end = _spans(work, module)[name]
    body = _lines(work, module)[start - 1 : end]
    # The generated copies are named x_f__mutmut_N / x_f__mutmut_orig: name them alike.
    return [line.replace(name, "f") for line in body]


def diff(work: Path, module: str, mutant: str) -> list[str]:
    """The unified diff of the mutant against its function, without the header."""
    generated = mutant.rpartition(".")[2]
    orig = generated.partition("__mutmut_")[0] + "__mutmut_orig"
    try:
        before, after = _function(work, module, orig), _function(work, module, generated)
    except (OSError, KeyError, ValueError):
        return [f"? {mutant}: not in mutmut's tree"]
    return [line for line in difflib.unified_diff(before, after, lineterm="", n=1)][2:]


def change(work: Path, module: str, mutant: str) -> str:
    """The changed lines, `-old` and `+new` stripped and joined: what a judgement names."""
    lines = [ln for ln in diff(work, module, mutant) if ln[:1] in "+-" and not ln.startswith("@@")]
    return " / ".join(ln[0] + ln[1:].strip() for ln in lines)
