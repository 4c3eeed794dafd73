"""The guard of a run's podman API service: the service dies with its nestcustom, cleanly.

    python -m nestcustom.image.guard DIR -- podman system service --time=0 unix://DIR/podman.sock

nestcustom starts this small process, which starts the service as its child
and records both (with the nestcustom that started them) in DIR/owner.json.
The kernel tells the guard when its nestcustom dies, however it dies (a
parent-death signal, PR_SET_PDEATHSIG, so also on SIGKILL or when a CI runner
kills the job). The guard then does what an interrupted nestcustom does: it
kills the running build step (by pid, below the service), so the step fails
and buildah removes its working container itself, keeps doing so until no
step has run for a while (a build left alone would run its next RUN), and
stops the service. A plain SIGTERM (nestcustom's own stop, after it stopped
its builds) stops the service at once.

Without the guard, a service started with `--time=0` outlived a SIGKILLed
nestcustom forever, in a session of its own, and podman 4.3 finished the
orphaned build's step and left its working container behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from nestcustom.image import orphans
from nestcustom.image.processes import kill_step_processes, step_processes

PR_SET_PDEATHSIG = 1
QUIET = 2.0  # seconds without a step process: the orphaned build has ended
DRAIN_AT_MOST = 30.0


class _Stop(Exception):
    def __init__(self, orphaned: bool) -> None:
        super().__init__()
        self.orphaned = orphaned


def _on(orphaned: bool) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Stop(orphaned)

    return handler


def drain(service_pid: int) -> None:
    """Kill the orphaned build's steps until none has run for QUIET seconds."""
    deadline = time.monotonic() + DRAIN_AT_MOST
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < QUIET:
        if step_processes(service_pid):
            kill_step_processes(service_pid)
            quiet_since = time.monotonic()
        time.sleep(0.05)


def stop(service: subprocess.Popen[bytes]) -> None:
    service.terminate()
    try:
        service.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m nestcustom.image.guard DIR -- SERVICE-ARGV...\n")
        return 2
    directory, command = Path(argv[0]), argv[2:]
    owner = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is nestcustom's to handle
    signal.signal(signal.SIGUSR1, _on(orphaned=True))
    signal.signal(signal.SIGTERM, _on(orphaned=False))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0)
    # The guard's own run of external programs: the service shares its session and
    # writes to the stderr nestcustom reads when the service fails to start.
    service = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        orphans.write_record(directory, owner, service.pid)
        if os.getppid() != owner:  # nestcustom died before the signal was armed
            raise _Stop(orphaned=True)
        return service.wait()
    except _Stop as stopping:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stopping.orphaned:
            drain(service.pid)
        stop(service)
        return 0


if __name__ == "__main__":
    # The functions of the module by its package name, not of __main__: a mutation
    # run (bench/mutation) finds and swaps a function by its module's name.
    from nestcustom.image import guard

    sys.exit(guard.main(sys.argv[1:]))
