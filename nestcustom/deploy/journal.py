"""The rollout journal: one JSON line per step, on disk before the next step starts.

It is what `deploy --resume` reads to finish an interrupted rollout without
redoing finished hosts. It holds no secrets: host names, steps, digests, times.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nestcustom.errors import BadInputError

FINAL_STEPS = {"done", "failed"}


@dataclass(frozen=True)
class Entry:
    host: str
    step: str
    state: str  # start | ok | error
    data: dict[str, Any]


class Journal:
    def __init__(self, path: Path, header: dict[str, Any] | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if header is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"rollout": header})

    def record(self, host: str, step: str, state: str, **data: Any) -> None:
        self._append({"host": host, "step": step, "state": state, "data": data})

    def _append(self, row: dict[str, Any]) -> None:
        row = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **row}
        line = json.dumps(row, sort_keys=True) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)  # the step is on disk before the next begins
            finally:
                os.close(fd)


@dataclass(frozen=True)
class Replay:
    header: dict[str, Any]
    finished: dict[str, Entry]  # host -> its final entry (done or failed)
    last: dict[str, Entry]  # host -> its latest entry
    before: dict[str, str | None]  # host -> what it booted at its first preflight
    rebased: frozenset[str]  # hosts whose rebase completed


def read_journal(path: Path) -> Replay:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the journal: {exc.strerror}") from exc
    header: dict[str, Any] | None = None
    finished: dict[str, Entry] = {}
    last: dict[str, Entry] = {}
    before: dict[str, str | None] = {}
    rebased: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if number == len(lines):
                break  # a line cut short by the interruption itself
            raise BadInputError(f"{path}:{number}: not a journal line") from None
        if "rollout" in row:
            header = row["rollout"]
            continue
        entry = Entry(row["host"], row["step"], row["state"], row.get("data", {}))
        last[entry.host] = entry
        if "before" in entry.data:
            before.setdefault(entry.host, entry.data["before"])
        if entry.step == "rebase" and entry.state == "ok":
            rebased.add(entry.host)
        if entry.step in FINAL_STEPS:
            finished[entry.host] = entry
    if header is None:
        raise BadInputError(f"{path}: not a nestcustom deploy journal (no rollout header)")
    return Replay(header, finished, last, before, frozenset(rebased))
