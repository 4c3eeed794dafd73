"""Build progress for people: a live table on a terminal, plain lines in CI logs.

Used by the CLI only; the build reports events and never prints.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from nestcustom.image.podman import BuildEvent


@dataclass
class _Row:
    step: int = 0
    total: int = 0
    what: str = "waiting"
    last: str = ""
    started: float = field(default_factory=time.monotonic)
    state: str = "building"


class PlainProgress:
    """One line per step and per output line, prefixed with the recipe: greppable logs."""

    def __init__(self, stream: TextIO = sys.stderr, verbose: bool = True) -> None:
        self.stream = stream
        self.verbose = verbose
        self.lock = threading.Lock()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def event(self, name: str, event: BuildEvent) -> None:
        if event.starts_step:
            text = f"{name} | STEP {event.step}/{event.total}: {event.text}"
        elif self.verbose:
            text = f"{name} |   {event.text}"
        else:
            return
        with self.lock:
            print(text, file=self.stream, flush=True)

    def finished(self, name: str, ok: bool, up_to_date: bool = False) -> None:
        state = "up to date" if up_to_date else "done" if ok else "FAILED"
        with self.lock:
            print(f"{name} | {state}", file=self.stream, flush=True)


class LiveProgress:
    """A table that redraws in place: one row per recipe, its step and latest line."""

    def __init__(self, names: list[str], console: Console | None = None) -> None:
        self.rows = {name: _Row() for name in names}
        self.console = console or Console(stderr=True)
        self.lock = threading.Lock()
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._table())
        self.live.__exit__(None, None, None)

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for column in ("recipe", "step", "what", "time", "latest"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        for name, row in self.rows.items():
            step = f"{row.step}/{row.total}" if row.total else "-"
            style = {"done": "green", "up to date": "green", "FAILED": "red"}.get(row.state, "")
            table.add_row(
                name,
                step,
                row.what if row.state == "building" else row.state,
                f"{time.monotonic() - row.started:5.1f}s",
                row.last[-70:],
                style=style,
            )
        return table

    def event(self, name: str, event: BuildEvent) -> None:
        with self.lock:
            row = self.rows.setdefault(name, _Row())
            if event.starts_step:
                row.step, row.total, row.what, row.last = (
                    event.step,
                    event.total,
                    event.text[:40],
                    "",
                )
            elif event.text.strip():
                row.last = event.text.strip()
            self.live.update(self._table())

    def finished(self, name: str, ok: bool, up_to_date: bool = False) -> None:
        with self.lock:
            self.rows[name].state = "up to date" if up_to_date else "done" if ok else "FAILED"
            self.live.update(self._table())


class HostProgress:
    """Per-host rollout progress: a live table on a terminal, else one line per step."""

    def __init__(self, hosts: list[str], live: bool) -> None:
        self.states = {h: ("waiting", "", time.monotonic()) for h in hosts}
        self.lock = threading.Lock()
        self.live = (
            Live(self._table(), console=Console(stderr=True), refresh_per_second=4)
            if live
            else None
        )

    def __enter__(self) -> HostProgress:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.update(self._table())
            self.live.__exit__(None, None, None)

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("host", "step", "state", "time"):
            table.add_column(column, no_wrap=True)
        for host, (step, state, since) in self.states.items():
            style = {
                "updated": "green",
                "unchanged": "green",
                "staged": "green",
                "failed": "red",
            }.get(step, "")
            table.add_row(host, step, state, f"{time.monotonic() - since:5.1f}s", style=style)
        return table

    def event(self, host: str, step: str, state: str) -> None:
        with self.lock:
            since = self.states.get(host, ("", "", time.monotonic()))[2]
            if state == "start" and self.states.get(host, ("waiting",))[0] == "waiting":
                since = time.monotonic()
            self.states[host] = (step, state, since)
            if self.live:
                self.live.update(self._table())
            else:
                print(f"{host} | {step} {state}", file=sys.stderr, flush=True)
