"""The rollout journal: one JSON line per step, on disk before the next step starts.

A journal belongs to exactly one rollout: a new rollout creates its file (and
refuses one that exists), a resumed rollout appends to it, and while either
runs the file is locked so no second controller writes to it. Reading is
strict: anything that is not a row this module wrote is a located error
(FILE:LINE:COL), except a last line cut short by the interruption itself. It
holds no secrets: host names, steps, digests, times.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nestcustom.errors import BadInputError

Row = tuple[int, dict[str, Any]]  # line number, the row
ROLLOUT_KEY = "rollout_id"  # in every row after the header: the header's id
_NOT_OURS = "a journal is written by nestcustom deploy; pass the file it named"


class Journal:
    def __init__(self, path: Path, fd: int, rollout: str) -> None:
        self.path = path
        self.rollout = rollout  # the header's id: every later row carries it (ROLLOUT_KEY)
        self._fd = fd
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: Path, kind: str, header: dict[str, Any]) -> Journal:
        """A new journal whose first row is `{kind: header}`; an existing file is refused."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise journal_exists(path) from None
        journal = cls(path, _locked(path, fd), str(header["id"]))
        journal._append({kind: header})
        return journal

    @classmethod
    def reopen(cls, path: Path, rollout: str) -> Journal:
        """The journal of rollout `rollout` being resumed, to append to."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise BadInputError(f"{path}: cannot open the journal: {exc.strerror}") from exc
        return cls(path, _locked(path, fd), rollout)

    def record(self, host: str, step: str, state: str, **data: Any) -> None:
        self.write({"host": host, "step": step, "state": state, "data": data})

    def write(self, row: dict[str, Any]) -> None:
        """A row of this rollout (it carries the rollout's id, checked when it is read back)."""
        self._append({ROLLOUT_KEY: self.rollout, **row})

    def _append(self, row: dict[str, Any]) -> None:
        row = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **row}
        line = (json.dumps(row, sort_keys=True) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)  # one write per row: a crash cuts at most the last line
            os.fsync(self._fd)  # the step is on disk before the next begins

    def close(self) -> None:
        os.close(self._fd)  # also drops the flock


def journal_exists(path: Path) -> BadInputError:
    return BadInputError(
        f"{path} already exists: a journal belongs to exactly one rollout",
        f"continue that rollout with --resume {path}, or give this one another --journal",
    )


def _locked(path: Path, fd: int) -> int:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BadInputError(
            f"{path} is in use by another running nestcustom",
            "one controller per rollout: wait for it, or stop it first",
        ) from None
    return fd


def read_rows(path: Path) -> list[Row]:
    """Every row of the journal, checked for shape; errors located at FILE:LINE:COL."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the journal: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInputError(f"{path}:{line}:1: not a nestcustom journal (not UTF-8 text)") from None
    lines = text.split("\n")
    torn = lines.pop()  # after the last newline: "" unless the last append was cut short
    rows: list[Row] = []
    for number, text_line in enumerate(lines, 1):
        try:
            row = json.loads(text_line)
        except ValueError as exc:
            column = getattr(exc, "colno", 1)
            raise BadInputError(
                f"{path}:{number}:{column}: not a journal row: {getattr(exc, 'msg', exc)}",
                _NOT_OURS,
            ) from None
        problem = _shape_problem(row, first=number == 1)
        if problem:
            raise BadInputError(
                f"{path}:{number}:1: {problem}",
                _NOT_OURS,
            )
        rows.append((number, row))
    if not rows:
        raise BadInputError(
            f"{path}:1:1: " + ("not a nestcustom journal" if torn else "the journal is empty"),
            "a journal starts with its rollout's header; pass the file `deploy` named",
        )
    rollout = rows[0][1]["rollout"]["id"]
    for number, row in rows[1:]:
        if row.get(ROLLOUT_KEY) != rollout:
            found = row.get(ROLLOUT_KEY)
            raise BadInputError(
                f"{path}:{number}:1: "
                + (
                    f"this row belongs to rollout {found!r}, not to {rollout!r} (the header's)"
                    if found is not None
                    else f"this row names no rollout (the header's is {rollout!r})"
                ),
                "a journal holds the rows of one rollout only; it was edited or joined from "
                "several files: resume with the journal the rollout wrote",
            )
    return rows


def _shape_problem(row: Any, *, first: bool) -> str | None:
    if not isinstance(row, dict) or not isinstance(row.get("time"), str):
        return "not a journal row"
    if first:
        header = row.get("rollout")
        if not isinstance(header, dict):
            return "not a nestcustom deploy journal (no rollout header)"
        return _header_problem(header)
    if "rollout" in row:
        return "a second rollout header: a journal belongs to exactly one rollout"
    if "resume" in row:
        return None if isinstance(row["resume"], dict) else "not a journal row"
    for key in ("host", "step", "state"):
        if not isinstance(row.get(key), str):
            return f"not a journal row: {key!r} missing"
    return None if isinstance(row.get("data"), dict) else "not a journal row: 'data' missing"


def _header_problem(header: dict[str, Any]) -> str | None:
    if not isinstance(header.get("id"), str) or not isinstance(header.get("target"), str):
        return "the rollout header has no id or target"
    hosts = header.get("hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        return "the rollout header has no host list"
    return None if isinstance(header.get("options"), dict) else "the rollout header has no options"
