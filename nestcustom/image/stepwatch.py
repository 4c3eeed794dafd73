"""A build's watch over its running step: past the step timeout, the step is stopped.

A thread looks at the running RUN step twice a second. Past the timeout it
kills that step's container, found by pid below our own podman service (the
build fails at once and buildah removes its working container; steps of other
builds beside it are left alone), or, with a service we did not start, closes
the build's stream. The build then fails saying which step ran too long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from nestcustom.image.events import BuildFailed
from nestcustom.image.processes import kill_step_running


class StepWatch:
    """Stops the RUN step of one build that runs longer than its timeout (None: never)."""

    def __init__(self, response: Any, timeout: float | None, service_pid: int | None) -> None:
        self.response = response
        self.service_pid = service_pid
        self.timeout = timeout
        self.command: str | None = None  # the running RUN step's shell command
        self.since = time.monotonic()
        self.fired = False
        self.stopped = False  # the step's processes were killed
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StepWatch:
        if self.timeout is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()

    def started(self, instruction: str) -> None:
        """A step starts: `instruction` as podman prints it (continued lines joined)."""
        words = instruction.split(" ")
        if words[0] != "RUN":
            self.command = None
            return
        words = words[1:]
        while words and (words[0].startswith("--") or not words[0]):
            words = words[1:]  # RUN's own flags (--mount=...): not part of the shell command
        self.since = time.monotonic()  # first: the watch reads command, then since
        self.command = " ".join(words)

    def lines(self) -> Iterator[bytes]:
        """The stream's lines; a stream we closed ends quietly (failure() says why)."""
        try:
            yield from self.response.iter_lines()
        except Exception:  # whatever reading a closed response raises
            if not self.fired:
                raise

    def failure(self, number: int, total: int, lines: Sequence[str]) -> BuildFailed | None:
        if not self.fired:
            return None
        how = "it was stopped" if self.stopped else "podman may still be running it"
        return BuildFailed(
            f"ran longer than {self.timeout:g} s, the step timeout; {how}",
            None,
            number or None,
            tuple(lines[-20:]),
            total,
        )

    def _watch(self) -> None:
        assert self.timeout is not None
        while not self.done.wait(0.5):
            command = self.command
            if command is None or time.monotonic() - self.since < self.timeout:
                continue
            self.fired = True
            if self.service_pid is None or not kill_step_running(self.service_pid, command):
                self.response.close()  # podman may finish the step; the build fails now
                return
            self.stopped = True
            self.command = None  # once: the build now ends with the step's failure
