"""Survivors judged one by one: what no test catches, and why.

The judgements live in bench/mutation/judged/PACKAGE.json, one entry per mutant:

    "nestcustom.git.x_iso_time__mutmut_3": {
      "change": "-return ... / +return ...",   (as `bench.mutation survivors` prints it)
      "kind": "equivalent",
      "reason": "..."
    }

(build-helper.json: the entry is named "FUNCTION: CHANGE", the shell mutant's function and
change, with " #N" for the N-th mutant of that change in that function.) A judgement
whose mutant now changes something else is reported as stale and not applied. The kinds:

  equivalent   the program behaves the same for every input
  unreachable  the input that would show the difference is refused earlier (the recipe
               schema, a check before it)
  accepted     a real difference no test pins, on purpose (e.g. a timeout's length); it
               stays in the score as a survivor, with its reason

Equivalent and unreachable mutants leave the score's denominator; accepted ones do not.
A survivor a user could notice gets a test instead. `python -m bench.mutation judge`
writes the entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

Kind = Literal["equivalent", "unreachable", "accepted"]
KINDS: tuple[Kind, ...] = ("equivalent", "unreachable", "accepted")
EXCLUDED: tuple[Kind, ...] = ("equivalent", "unreachable")
DIRECTORY = Path(__file__).resolve().parent / "judged"
SHELL = "build-helper"


@dataclass(frozen=True)
class Judgement:
    change: str
    kind: Kind
    reason: str


def load(package: str) -> dict[str, Judgement]:
    path = DIRECTORY / f"{package}.json"
    if not path.is_file():
        return {}
    found = {}
    for name, table in json.loads(path.read_text()).items():
        kind = table["kind"]
        if kind not in KINDS:
            raise ValueError(f"{path}: {name}: kind {kind!r} is not one of {', '.join(KINDS)}")
        found[name] = Judgement(table["change"], cast(Kind, kind), table["reason"])
    return found


def add(package: str, entries: dict[str, Judgement]) -> None:
    path = DIRECTORY / f"{package}.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    for name, j in entries.items():
        data[name] = {"change": j.change, "kind": j.kind, "reason": j.reason}
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def shell_key(function: str, change: str) -> str:
    return f"{function}: {change}"
