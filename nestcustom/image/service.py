"""The podman API service a run talks to, started for the run and stopped after it.

A build runs inside the service: each RUN step is a container it starts (via
buildah's OCI runtime), in a session of its own. Because the service is this
process's child (and dies with it, even when nestcustom is SIGKILLed: see
orphans), an interrupted build can be stopped at once and exactly: the
step containers below *our* service pid are killed, the step fails, and
buildah removes its own working container (we never remove containers by
name). With only a socket (CONTAINER_HOST, e.g. a remote podman), none of that
is possible: the build is left to notice the closed stream after its step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nestcustom import proc
from nestcustom.image import orphans
from nestcustom.image.podman import Podman, PodmanUnavailable
from nestcustom.image.processes import kill_step_processes

log = logging.getLogger("nestcustom.podman")


def _answers(url: str) -> bool:
    from podman import PodmanClient

    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        return False
    try:
        with PodmanClient(base_url=url, timeout=5) as client:
            return bool(client.ping())
    except Exception:  # any failure to talk means "not this one"
        return False


@contextlib.contextmanager
def connect(timeout: float = 30) -> Iterator[Podman]:
    """A Podman on the service CONTAINER_HOST names, or on one started for this run."""
    if url := os.environ.get("CONTAINER_HOST"):
        from podman import PodmanClient

        if not _answers(url):
            raise PodmanUnavailable(
                f"no podman API answers at CONTAINER_HOST={url}",
                "start it (podman system service), or unset CONTAINER_HOST to let nestcustom start one",
            )
        log.debug("using the podman service at %s", url)
        with PodmanClient(base_url=url, timeout=3600) as client:
            yield Podman(client)
        return
    binary = proc.require("podman", "podman")
    orphans.remove_leftovers()
    with tempfile.TemporaryDirectory(prefix=orphans.PREFIX) as tmp:
        url = f"unix://{tmp}/podman.sock"
        # The service runs below a guard that stops it when this process dies (image/guard.py).
        guard = [sys.executable, "-m", "nestcustom.image.guard", tmp, "--"]
        service = proc.start([*guard, binary, "system", "service", "--time=0", url])
        try:
            # Imported while the service starts: podman-py (requests, rich) takes ~0.1 s.
            from podman import PodmanClient

            deadline = time.monotonic() + timeout
            while not _answers(url):
                if service.poll() is not None or time.monotonic() > deadline:
                    stderr = (
                        service.stderr.read().decode(errors="replace") if service.stderr else ""
                    )
                    raise PodmanUnavailable(
                        "podman's API service did not start"
                        + (f": {stderr.strip()[-300:]}" if stderr else ""),
                        "check that `podman info` works for this user",
                    )
                time.sleep(0.02)  # the service answers within a few tens of ms
            record = orphans.read_record(Path(tmp))  # written before the service could answer
            service_pid = record.service_pid if record else None
            with PodmanClient(base_url=url, timeout=3600) as client:
                yield Podman(client, service_pid=service_pid)
        finally:
            # Steps still running (an error or a second Ctrl-C cut the stop short) die
            # with their service rather than run on orphaned; the guard stops the service.
            if record := orphans.read_record(Path(tmp)):
                kill_step_processes(record.service_pid)
            _stop(service)


def _stop(service: subprocess.Popen[bytes]) -> None:
    try:
        service.terminate()
        service.wait(timeout=5)
    except BaseException:  # slow to stop, or another Ctrl-C: do not wait any longer
        service.kill()
        service.wait(timeout=5)
        raise
