"""Stop requests for work on hosts: finish the running step, start nothing new.

Ctrl-C, SIGTERM and a lost terminal (SIGHUP) set `soft`: the rollout checks it
at every step boundary. A second one sets `hard`: waits for rebooting hosts
end at once (the hosts reboot on their own), and every host still gets its
report so the operator sees what was left and how to resume. A third raises
KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from nestcustom import proc

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class StopFlags:
    soft: threading.Event = field(default_factory=threading.Event)
    hard: threading.Event = field(default_factory=threading.Event)
    signal_name: list[str] = field(default_factory=list)  # the first stop signal's name

    @property
    def stopped_by(self) -> str | None:
        """The first stop signal's name once one came, else None."""
        if not self.soft.is_set():
            return None
        return self.signal_name[0] if self.signal_name else "SIGINT"


@contextmanager
def stop_on_signals(notice: Callable[[str], None]) -> Iterator[StopFlags]:
    """Stop flags set by stop signals; `notice` tells the operator what happens now."""
    flags = StopFlags()

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if flags.hard.is_set():
            raise KeyboardInterrupt
        if flags.soft.is_set():
            flags.hard.set()
            notice(f"{name} again: no more waiting for hosts; reporting what was left")
            return
        flags.signal_name.append(name)
        flags.soft.set()
        proc.stop_running()  # reads that change nothing (preflights) end now
        notice(f"{name}: no new host or step starts; running steps finish")

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield flags
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
