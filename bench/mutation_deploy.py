"""The deploy package's mutation score: `python -m bench.mutation deploy`.

    python -m bench.mutation_deploy [--jobs N] [--fast-only]

Kept as the command BENCHMARKS.md gave first; bench/mutation/ holds the table.
"""

from __future__ import annotations

import sys

from bench.mutation.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["deploy", *sys.argv[1:]]))
