"""Mutation score of the deploy stage's pure modules: `python -m bench.mutation deploy`.

    python -m bench.mutation_deploy [--jobs 2] [--keep DIR]

Kept as the command BENCHMARKS.md gave first; bench/mutation.py holds the table.
"""

from __future__ import annotations

import sys

from bench.mutation import main

if __name__ == "__main__":
    sys.argv.insert(1, "deploy")
    main()
