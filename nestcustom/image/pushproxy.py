"""Push an image without setting a tag: a local proxy in front of the registry.

podman (containers/image 5.23, Debian 12) cannot push a locally built image to
a digest: it refuses before sending anything ("Digest of source image's
manifest would not match destination reference"), because it compresses the
layers and so only knows the manifest at the end. Signing on push must
nevertheless never leave an unsigned tag. So podman pushes through this proxy:
every request goes to the registry unchanged, except the final manifest PUT
to a tag, which goes to the manifest's own digest instead. The registry then
holds the image by digest only; the tag is set once the signature is stored.

The proxy listens on 127.0.0.1 only, on a port derived from the registry's
name, so podman's blob cache (keyed by registry host and port) knows the
compressed layers from the second signed push on and does not compress the
base's layers again.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import http.server
import io
import re
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

from nestcustom.errors import NestcustomError

_MANIFEST_BY_TAG = re.compile(
    r"^/v2/(?P<name>.+)/manifests/(?P<ref>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)
_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "host",
    "content-length",
}
CHUNK = 1 << 16


@dataclass
class Pushed:
    """What podman pushed through the proxy: the manifest it sent for the tag."""

    name: str  # the repository path, without the registry
    tag: str
    digest: str
    media_type: str
    manifest: bytes


@dataclass
class _State:
    upstream: str  # host[:port]
    scheme: str
    context: ssl.SSLContext | None
    pushed: list[Pushed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.upstream, timeout=300, context=self.context)
        return http.client.HTTPConnection(self.upstream, timeout=300)


def _chunks(stream: io.BufferedIOBase) -> Iterator[bytes]:
    """The body of a request sent with Transfer-Encoding: chunked, decoded, piece by piece."""
    while True:
        size_line = stream.readline(1024)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        left = size
        while left:
            piece = stream.read(min(left, CHUNK))
            if not piece:
                raise ConnectionError("the client closed the connection mid-chunk")
            left -= len(piece)
            yield piece
        stream.readline(16)


def _sized(stream: io.BufferedIOBase, length: int) -> Iterator[bytes]:
    left = length
    while left:
        piece = stream.read(min(left, CHUNK))
        if not piece:
            raise ConnectionError("the client closed the connection mid-body")
        left -= len(piece)
        yield piece


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # podman reports the push; the proxy stays quiet

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _forward(self) -> None:
        state = self.server.state
        path, body, length = self.path, None, None
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _chunks(self.rfile)
        elif self.headers.get("Content-Length"):
            length = int(self.headers["Content-Length"])
            body = _sized(self.rfile, length)
        target = _MANIFEST_BY_TAG.match(urllib.parse.urlsplit(path).path)
        if self.command == "PUT" and target and not target["ref"].startswith("sha256:"):
            manifest = b"".join(body or ())
            digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            path = f"/v2/{target['name']}/manifests/{digest}"
            media_type = self.headers.get("Content-Type", "")
            with state.lock:
                state.pushed.append(
                    Pushed(target["name"], target["ref"], digest, media_type, manifest)
                )
            body, length = iter((manifest,)), len(manifest)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        if length is not None:
            headers["Content-Length"] = str(length)
        upstream = state.connection()
        try:
            upstream.request(
                self.command,
                path,
                body=body,
                headers=headers,
                encode_chunked=body is not None and length is None,
            )
            response = upstream.getresponse()
            self._answer(response)
        except (OSError, http.client.HTTPException) as exc:
            message = f"nestcustom push proxy: the registry {state.upstream}: {exc}".encode()
            self.send_response(502)
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
        finally:
            upstream.close()

    def _answer(self, response: http.client.HTTPResponse) -> None:
        state = self.server.state
        self.send_response(response.status, response.reason)
        length = response.getheader("Content-Length")
        data = b""
        if length is None and self.command != "HEAD":
            data = response.read()  # answers to a push are small; a blob GET has a length
            length = str(len(data))
        for key, value in response.getheaders():
            if key.lower() in _HOP:
                continue
            if key.lower() == "location":
                value = _relative(value, state.upstream)
            self.send_header(key, value)
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        if self.command == "HEAD":
            return
        if data:
            self.wfile.write(data)
            return
        while piece := response.read(CHUNK):
            self.wfile.write(piece)


def _relative(location: str, upstream: str) -> str:
    """A Location on the registry itself, made relative so the client comes back here."""
    parts = urllib.parse.urlsplit(location)
    if parts.netloc and parts.netloc != upstream:
        return location  # elsewhere (blob storage behind a redirect): the client goes there
    return urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def server_activate(self) -> None:
        # Non-blocking: a client that resets between select and accept must not leave
        # accept() (and so shutdown()) hanging; socketserver skips the failed accept.
        super().server_activate()
        self.socket.setblocking(False)


def stable_ports(upstream: str, count: int = 8) -> list[int]:
    """The ports tried for `upstream`'s proxy, the same on every run (see the module doc)."""
    first = 20000 + int(hashlib.sha256(upstream.encode()).hexdigest()[:8], 16) % 20000
    return [first + i for i in range(count)]


def _scheme(upstream: str, tls_verify: bool) -> tuple[str, ssl.SSLContext | None]:
    """https, or http for a registry without TLS (allowed only without TLS verification)."""
    context = ssl.create_default_context()
    if not tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    probe = http.client.HTTPSConnection(upstream, timeout=30, context=context)
    try:
        probe.request("GET", "/v2/")
        probe.getresponse().read()
        return "https", context
    except ssl.SSLError as exc:
        if tls_verify:
            raise NestcustomError(
                f"cannot reach the registry {upstream} over TLS: {exc}",
                "for a registry without TLS, pass --no-tls-verify",
            ) from exc
        return "http", None
    except OSError as exc:
        raise NestcustomError(f"cannot reach the registry {upstream}: {exc}") from exc
    finally:
        probe.close()


@contextlib.contextmanager
def push_proxy(upstream: str, *, tls_verify: bool = True) -> Iterator[ProxyHandle]:
    """A running proxy for `upstream` (host[:port]); stopped on leaving the block."""
    scheme, context = _scheme(upstream, tls_verify)
    state = _State(upstream, scheme, context)
    server: _Server | None = None
    for port in [*stable_ports(upstream), 0]:
        try:
            server = _Server(("127.0.0.1", port), _Handler)
            break
        except OSError:
            continue
    assert server is not None  # port 0 always binds
    server.state = state
    thread = threading.Thread(target=server.serve_forever, name="push-proxy", daemon=True)
    thread.start()
    try:
        yield ProxyHandle(f"127.0.0.1:{server.server_address[1]}", state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class ProxyHandle:
    address: str  # 127.0.0.1:PORT: push to ADDRESS/NAME:TAG with TLS verification off
    _state: _State

    def pushed(self, name: str, tag: str) -> Pushed:
        """The manifest podman sent for NAME:TAG (never stored under the tag)."""
        with self._state.lock:
            found = [p for p in self._state.pushed if p.name == name and p.tag == tag]
        if not found:
            raise NestcustomError(f"the push of {name}:{tag} sent no manifest")
        return found[-1]
