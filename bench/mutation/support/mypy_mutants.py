"""mypy for mutmut's type-check filter, keeping only the errors inside a mutant.

mutmut runs the type checker over its trampolined copy of the product and gives up
("Could not find mutant for type error") on the first error outside a mutant's own
function: the trampolines can make a class stop matching a Protocol it matches in the
product (image/build.py: `Podman` as a `Publisher`). Such an error names no mutant, so
dropping it is what the filter would have to do anyway; the mutant behind it, if any, is
then tried against the tests instead (it may survive: the score can only be lower).

Usage (the word "mypy" must be in mutmut's command for it to read mypy's JSON):
    python mypy_mutants.py mypy --output json ARGS...
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path


@cache
def mutant_spans(path: str) -> list[tuple[int, int]]:
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    return [
        (node.lineno, node.end_lineno or node.lineno)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name
    ]


def inside_a_mutant(error: dict[str, object]) -> bool:
    line = error.get("line")
    path = error.get("file")
    if not isinstance(line, int) or not isinstance(path, str):
        return True  # not an error of a file: mutmut decides
    return any(start <= line <= end for start, end in mutant_spans(path))


def main() -> int:
    done = subprocess.run([sys.executable, "-m", *sys.argv[1:]], capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    kept = []
    for line in done.stdout.splitlines():
        if not line.strip():
            continue
        try:
            error = json.loads(line)
        except ValueError:
            kept.append(line)  # not JSON: mutmut reports it
            continue
        if inside_a_mutant(error):
            kept.append(line)
    print("\n".join(kept) if kept else "")
    return done.returncode if kept else 0


if __name__ == "__main__":
    sys.exit(main())
