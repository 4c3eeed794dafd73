"""HTTP servers for the tests whose shutdown never hangs.

socketserver's serve_forever waits for the listening socket to be readable, then
calls a blocking accept(). When a client resets its connection in between (a
killed build, a curl that gave up), accept() blocks forever, and so does
shutdown(): a full test run hung in a fixture's teardown that way. A
non-blocking listening socket makes that accept() fail at once, which
socketserver skips; the connections it accepts are blocking as usual.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_activate(self) -> None:
        super().server_activate()
        self.socket.setblocking(False)
