"""Stop requests for work on hosts: finish the running step, start nothing new.

Ctrl-C, SIGTERM and a lost terminal (SIGHUP) set an event the rollout checks
at every step boundary; a second Ctrl-C raises KeyboardInterrupt at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_signals(notice: Callable[[str], None]) -> Iterator[threading.Event]:
    """An event set by the first stop signal; `notice` tells the operator what happens now."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        stop.set()
        notice(f"{signal.Signals(signum).name}: no new host or step starts; running steps finish")

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
