"""Survivors judged one by one: what no test catches, and why.

Each entry names the mutant, the change it makes (as `python -m bench.mutation survivors`
prints it: a judgement whose mutant now changes something else is reported as stale and
not applied), a kind and the reason:

  equivalent   the program behaves the same for every input
  unreachable  the input that would show the difference is refused earlier (the recipe
               schema, a check before it)
  accepted     a real difference no test pins, on purpose (e.g. a timeout's length); it
               stays in the score as a survivor, with its reason

Equivalent and unreachable mutants leave the score's denominator; accepted ones do not.
A survivor a user could notice gets a test instead.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["equivalent", "unreachable", "accepted"]
EXCLUDED: tuple[Kind, ...] = ("equivalent", "unreachable")

# mutant -> (change, kind, reason)
JUDGED: dict[str, tuple[str, Kind, str]] = {}

# The build helper's shell mutants: (shell function, change) -> (kind, reason).
JUDGED_SHELL: dict[tuple[str, str], tuple[Kind, str]] = {
    ("kernel_version", "-found= / +:"): (
        "equivalent",
        "found is read only when exactly one kernel set it; with none or several the "
        "function stops first",
    ),
    ("key_of", "-*) return 0 ;; / +*) return 1 ;;"): (
        "equivalent",
        "key_of is only called inside $(...) in a [ ] test: its exit status is never read",
    ),
}
