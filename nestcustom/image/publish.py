"""Tag a finished image and push it: only when the run was not stopped, one run per tag at a time.

A tag is set after a build succeeded and before anything is pushed, under two
guards: the run's stop flag (a Ctrl-C between the build and the tag leaves no
tag) and a lock per tag shared by every nestcustom on the host (two runs
building the same tag do not interleave tag, push and check). A run that
finds the tag moved by another run since it looked refuses, rather than
overwrite it or print a digest the registry no longer serves.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from nestcustom.errors import NestcustomError
from nestcustom.image import registry
from nestcustom.image.auth import credentials_for

LOCKS = Path(tempfile.gettempdir()) / "nestcustom-locks"


class Stopped(NestcustomError):
    """The run was interrupted before this image was tagged or pushed."""


class Publisher(Protocol):
    """What publishing needs of podman (`podman.Podman` has it)."""

    def tag(self, image_id: str, reference: str) -> None: ...

    def push(
        self,
        reference: str,
        *,
        tls_verify: bool = True,
        credentials: tuple[str, str] | None = None,
        on_line: Callable[[str], None] = ...,
    ) -> None: ...


class StopFlag:
    """Set once by the interrupted main thread; checked under its lock before each change.

    It also keeps what the run changed (tags set, pushes finished), so an
    interrupted run can say exactly what it left.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested = False
        self._stopped = False
        self.tagged: list[str] = []
        self.pushed: list[str] = []

    def left(self) -> str:
        """What the run changed before it stopped, in words."""
        if not self.tagged:
            return "no tag was set, nothing was pushed"
        unpushed = [r for r in self.tagged if r not in self.pushed]
        text = f"{len(self.tagged)} image(s) were tagged before the stop: {', '.join(self.tagged)}"
        if self.pushed:
            text += f"; pushed: {', '.join(self.pushed)}"
        elif unpushed:
            text += "; nothing was pushed"
        return text + "; no other tag was set"

    def stop(self) -> None:
        """Stop: returns once no change is under way, and none starts afterwards."""
        # Said before taking the lock: a thread that just finished a change and checks
        # again at once (locks are not fair) must see it.
        self._requested = True
        with self._lock:
            self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    @contextlib.contextmanager
    def unless_stopped(self, what: str) -> Iterator[None]:
        """Run the block only if the run is not stopped, and keep it from stopping meanwhile."""
        with self._lock:
            if self._requested:
                raise Stopped(f"interrupted before {what}")
            yield


@contextlib.contextmanager
def tag_lock(reference: str) -> Iterator[None]:
    """Hold the host-wide lock of `reference` (a flock, released if the process dies)."""
    LOCKS.mkdir(mode=0o1777, parents=True, exist_ok=True)
    path = LOCKS / (hashlib.sha256(reference.encode()).hexdigest()[:32] + ".lock")
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def claimed(
    reference: str, image_id: str, found: str | None, current: Callable[[], str | None]
) -> Iterator[None]:
    """Hold the tag's lock, refusing when another run tagged it since this one looked.

    `found` is the image the tag named when the run looked, `current()` the one it
    names now: when they differ another run tagged it meanwhile.
    """
    with tag_lock(reference):
        now = current()
        if now != found and now != image_id:
            raise NestcustomError(
                f"another build tagged {reference} while this one ran "
                f"(now {(now or 'nothing')[:12]}, was {(found or 'nothing')[:12]}); "
                f"not overwriting it with {image_id[:12]}",
                "two runs built the same tag at once; build again when the other is done",
            )
        yield


def publish(
    podman: Publisher,
    image_id: str,
    reference: str,
    *,
    found: str | None,
    current: Callable[[], str | None],
    push: bool,
    tls_verify: bool,
    stop: StopFlag,
    on_line: Callable[[str], None] = lambda line: None,
) -> str | None:
    """Tag `image_id` as `reference`, push it if asked; the registry's digest when pushed
    (`claimed` says what `found` and `current` are)."""
    with claimed(reference, image_id, found, current):
        with stop.unless_stopped("tagging; no tag was set"):
            podman.tag(image_id, reference)
            stop.tagged.append(reference)
        if not push:
            return None
        digest = push_checked(podman, image_id, reference, tls_verify, stop, on_line)
        stop.pushed.append(reference)
        return digest


def push_checked(
    podman: Publisher,
    image_id: str,
    reference: str,
    tls_verify: bool,
    stop: StopFlag,
    on_line: Callable[[str], None],
) -> str:
    """Push, then read back what the registry serves: it must be our image."""
    with stop.unless_stopped("pushing; nothing was pushed"):
        pass
    found = credentials_for(reference)
    podman.push(
        reference,
        tls_verify=tls_verify,
        credentials=(found.username, found.password) if found else None,
        on_line=on_line,
    )
    served = registry.served(reference, tls_verify=tls_verify)
    if served is None or served.image_id != image_id.removeprefix("sha256:"):
        raise NestcustomError(
            f"the registry serves another image under {reference} "
            f"({served.image_id[:12] if served else 'nothing'}) than the one pushed ({image_id[:12]})",
            "another push to the same tag raced this one; build again",
        )
    return served.digest
