"""Which suite caught each mutant of a package, and the scores the goal is stated in.

score      = caught (fast tests, mypy, universe tests) / (mutants - judged no-test-can-catch)
fast share = caught by the fast suite (its tests and mypy) / the same denominator
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.mutation import judged, verdicts
from bench.mutation.show import change

CAUGHT = ("fast", "mypy", "universe")
COLUMNS = ("fast", "mypy", "universe", "equivalent", "unreachable", "accepted", "survived",
           "no tests", "not run", "stale")  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    name: str
    module: str
    caught_by: str  # one of CAUGHT, a judgement's kind, or survived / no tests / not run / stale
    change: str


def python_outcomes(package: str, fast: Path, universe: Path) -> list[Outcome]:
    judgements = judged.load(package)
    later = {m.name: m.exit_code for m in verdicts.mutants(universe)} if universe.is_dir() else {}
    out = []
    for m in verdicts.mutants(fast):
        code = m.exit_code
        if code in verdicts.KILLED or code in verdicts.TIMEOUT:
            by = "fast"
        elif code in verdicts.TYPE_CHECK:
            by = "mypy"
        elif code is None:
            by = "not run"
        elif later.get(m.name) in verdicts.KILLED or later.get(m.name) in verdicts.TIMEOUT:
            by = "universe"
        else:
            by = "survived" if code in verdicts.SURVIVED else "no tests"
        text = change(fast, m.module, m.name) if by in ("survived", "no tests") else ""
        if text and m.name in judgements:
            j = judgements[m.name]
            by = j.kind if j.change == text else "stale"
        out.append(Outcome(m.name, m.module, by, text))
    return out


@dataclass(frozen=True)
class Score:
    package: str
    mutants: int
    counts: dict[str, int]

    @property
    def denominator(self) -> int:
        return self.mutants - sum(self.counts.get(kind, 0) for kind in judged.EXCLUDED)

    @property
    def score(self) -> float:
        caught = sum(self.counts.get(c, 0) for c in CAUGHT)
        return 100.0 * caught / max(self.denominator, 1)

    @property
    def fast_share(self) -> float:
        caught = self.counts.get("fast", 0) + self.counts.get("mypy", 0)
        return 100.0 * caught / max(self.denominator, 1)


def score(package: str, outcomes: list[Outcome]) -> Score:
    return Score(package, len(outcomes), dict(Counter(o.caught_by for o in outcomes)))


def table(scores: list[Score]) -> str:
    head = ["package", "mutants", *COLUMNS, "score", "fast share"]
    rows = [head, ["---"] * len(head)]
    for s in scores:
        rows.append(
            [s.package, str(s.mutants), *(str(s.counts.get(c, 0)) for c in COLUMNS),
             f"{s.score:.1f}%", f"{s.fast_share:.1f}%"]
        )  # fmt: skip
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def save(path: Path, scores: list[Score], outcomes: dict[str, list[Outcome]]) -> None:
    data = {
        s.package: {
            "mutants": s.mutants,
            "counts": s.counts,
            "score": round(s.score, 1),
            "fast_share": round(s.fast_share, 1),
            "left": [asdict(o) for o in outcomes[s.package] if o.caught_by not in CAUGHT],
        }
        for s in scores
    }
    path.parent.mkdir(parents=True, exist_ok=True)  # a report before any run
    path.write_text(json.dumps(data, indent=1))
