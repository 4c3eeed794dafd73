"""A FleetLock server for the tests: the protocol of contract section 3, with a
semaphore of N slots that is re-entrant per id, answering as the reference server,
airlock, does (airlock itself needs etcd and is not packaged here): a full semaphore
is HTTP 500 `failed_lock` "all N semaphore slots currently locked", an unknown
group 400 `unknown_group` (airlock internal/server/pre_reboot.go at a3585ed).

`mode` makes it misbehave: "down-etcd" (500 failed_sem_init, as airlock without
its etcd), "garbage" (500 with an HTML body), "slow" (answers after `delay` s)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from tests.universe.httpserve import QuietHTTPServer


class Semaphore:
    def __init__(self, slots: int, groups: tuple[str, ...] = ("default",)) -> None:
        self.slots = slots
        self.groups = groups
        self.mode = ""
        self.delay = 0.0
        self.requests: list[tuple[str, str, str]] = []  # (endpoint, id, group)
        self.holders: set[str] = set()
        self.taken: list[str] = []  # every successful pre-reboot, in order
        self.lock = threading.Lock()


def _handler(semaphore: Semaphore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.headers.get("fleet-lock-protocol") != "true":
                self._send(400, {"kind": "missing_header", "value": "fleet-lock-protocol"})
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            who, group = body["client_params"]["id"], body["client_params"]["group"]
            semaphore.requests.append((self.path.rpartition("/v1/")[2], who, group))
            if semaphore.mode == "slow":
                time.sleep(semaphore.delay)
            if semaphore.mode == "garbage":
                self._send(500, None)
                return
            if semaphore.mode == "down-etcd":
                self._send(
                    500,
                    {
                        "kind": "failed_sem_init",
                        "value": "failed to initialize semaphore manager: context deadline exceeded",
                    },
                )
                return
            if group not in semaphore.groups:
                self._send(400, {"kind": "unknown_group", "value": f"unknown group {group!r}"})
                return
            with semaphore.lock:
                if self.path.endswith("/v1/pre-reboot"):
                    if who in semaphore.holders or len(semaphore.holders) < semaphore.slots:
                        semaphore.holders.add(who)
                        semaphore.taken.append(who)
                        self._send(200, {})
                    else:
                        self._send(
                            500,
                            {
                                "kind": "failed_lock",
                                "value": f"all {semaphore.slots} semaphore slots currently locked",
                            },
                        )
                    return
                semaphore.holders.discard(who)
                self._send(200, {})

        def _send(self, code: int, body: dict[str, str] | None) -> None:
            data = json.dumps(body).encode() if body is not None else b"<html>Bad Gateway</html>"
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # the client may have given up waiting (the slow mode's point)
            with contextlib.suppress(BrokenPipeError):
                self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_fleetlock(slots: int = 1, semaphore: Semaphore | None = None) -> Iterator[str]:
    """Yield the base URL of a FleetLock server on 127.0.0.1."""
    state = semaphore or Semaphore(slots)
    server = QuietHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
