"""Servers that refuse what a signed push sends: a signature store that refuses every
upload, and a registry front that refuses OCI artifact manifests (an SBOM)."""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

from tests.universe.httpserve import QuietHTTPServer


@contextlib.contextmanager
def refusing_store() -> Iterator[str]:
    """A web server that has no signatures and refuses every upload (403)."""

    class Refuse(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = QuietHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sigs"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def refusing_artifacts(upstream: str) -> Iterator[str]:
    """The registry at `upstream` behind a front that refuses OCI artifact manifests (403
    DENIED), as a registry with a policy against them does; everything else passes through
    (Host kept, so the registry's upload Locations point back here)."""

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            pieces = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(pieces)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            body = self._body()
            if self.command == "PUT" and "/manifests/" in self.path and b'"artifactType"' in body:
                denied = b'{"errors":[{"code":"DENIED","message":"artifacts are not accepted"}]}'
                self._send(403, [("Content-Type", "application/json")], denied)
                return
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("transfer-encoding", "connection", "content-length")
            }
            connection = http.client.HTTPConnection(upstream, timeout=300)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                answer = connection.getresponse()
                self._send(answer.status, answer.getheaders(), answer.read())
            finally:
                connection.close()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    server = QuietHTTPServer(("127.0.0.1", 0), Front)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
