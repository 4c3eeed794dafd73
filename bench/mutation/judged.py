"""Survivors judged one by one: mutants no test can catch, and why.

Each entry names the mutant, the change it makes (as `python -m bench.mutation survivors`
prints it: a judgement whose mutant now changes something else is reported as stale, not
applied) and the reason. Only two kinds belong here: equivalent (the program behaves
the same for every input) and unreachable (the input that would show the difference is
refused earlier, e.g. by the recipe schema). A survivor a user could notice gets a test.
"""

from __future__ import annotations

# mutant -> (change, reason)
JUDGED: dict[str, tuple[str, str]] = {}

# The build helper's shell mutants: (shell function, change) -> reason.
JUDGED_SHELL: dict[tuple[str, str], str] = {}
