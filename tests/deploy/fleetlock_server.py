"""A FleetLock server for the tests: the protocol of contract section 3, with a
semaphore of N slots that is re-entrant per id (as the reference server, airlock,
behaves; airlock itself needs etcd and is not packaged here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Semaphore:
    def __init__(self, slots: int) -> None:
        self.slots = slots
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
            who = body["client_params"]["id"]
            with semaphore.lock:
                if self.path.endswith("/v1/pre-reboot"):
                    if who in semaphore.holders or len(semaphore.holders) < semaphore.slots:
                        semaphore.holders.add(who)
                        semaphore.taken.append(who)
                        self._send(200, {})
                    else:
                        self._send(
                            409,
                            {
                                "kind": "failed_lock",
                                "value": f"all {semaphore.slots} semaphore slots are held",
                            },
                        )
                    return
                semaphore.holders.discard(who)
                self._send(200, {})

        def _send(self, code: int, body: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_fleetlock(slots: int = 1, semaphore: Semaphore | None = None) -> Iterator[str]:
    """Yield the base URL of a FleetLock server on 127.0.0.1."""
    state = semaphore or Semaphore(slots)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
