"""The build helper's downloads against a server that misbehaves, run in the fixture NestOS
base: a stall fails with the URL and a hint, a broken connection is tried again."""

from __future__ import annotations

import hashlib
import http.server
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import ClassVar

import pytest

from tests.universe.base.fixtures_base import NestosImage, Result
from tests.universe.httpserve import QuietHTTPServer

pytestmark = pytest.mark.universe

HELPER = Path(str(resources.files("nestcustom.containerfile") / "build-helper.sh"))
BODY = b"the downloaded tool\n" * 100
SHA = hashlib.sha256(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok, /stall, /reset/N and /busy/N (the first N requests reset or get a 503), /missing."""

    seen: ClassVar[Counter[str]] = Counter()

    def do_GET(self) -> None:  # the http.server API's name
        self.seen[self.path] += 1
        kind, _, times = self.path.strip("/").partition("/")
        early = self.seen[self.path] <= int(times or 0)
        if kind == "stall":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:10])
            self.wfile.flush()
            time.sleep(30)  # then nothing more: the client must give up first
        elif kind == "reset" and early:
            # SO_LINGER 0: close() sends a TCP reset, as a dropped connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif kind == "busy" and early:
            self.send_error(503)
        elif kind in ("ok", "reset", "busy"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[tuple[str, Counter[str]]]:
    _Handler.seen = Counter()
    server = QuietHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.seen
    finally:
        server.shutdown()
        server.server_close()


def fetch(image: NestosImage, url: str, then: str = "") -> Result:
    return image.run(
        f"sh /run/helper.sh files --fetch {url} {SHA} /usr/lib/tool 0644 - {then}",
        volumes={HELPER: "/run/helper.sh"},
        env={"NESTCUSTOM_STALL_SECONDS": "2"},
    )


def test_a_download_that_stalls_fails_naming_the_url(
    nestos_sp2: NestosImage, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    started = time.monotonic()
    result = fetch(nestos_sp2, f"{url}/stall")
    assert result.returncode == 1
    assert f"nestcustom: download of {url}/stall stalled: no data for 2 s" in result.stderr
    assert "mirror" in result.stderr  # the hint
    assert seen["/stall"] == 1  # not tried again: a stall is reported, not waited out
    assert time.monotonic() - started < 25


def test_a_reset_connection_is_tried_again_with_backoff(
    nestos_sp2: NestosImage, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    result = fetch(nestos_sp2, f"{url}/reset/2", "&& cat /usr/lib/tool | sha256sum")
    assert result.returncode == 0, result.output
    assert result.stdout.split()[0] == SHA
    assert seen["/reset/2"] == 3
    retries = [line for line in result.stderr_lines if "broke" in line]
    assert [line.rsplit(" in ", 1)[1] for line in retries] == ["1 s", "2 s"]


def test_a_busy_server_is_tried_again_and_a_missing_file_is_not(
    nestos_sp2: NestosImage, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    assert fetch(nestos_sp2, f"{url}/busy/1").returncode == 0
    assert seen["/busy/1"] == 2
    missing = fetch(nestos_sp2, f"{url}/missing")
    assert missing.returncode == 1
    assert f"nestcustom: cannot download {url}/missing: (22)" in missing.stderr
    assert "404" in missing.stderr
    assert seen["/missing"] == 1


def test_a_connection_that_keeps_breaking_fails_after_four_attempts(
    nestos_sp2: NestosImage, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    result = fetch(nestos_sp2, f"{url}/reset/9")
    assert result.returncode == 1
    assert f"nestcustom: cannot download {url}/reset/9:" in result.stderr
    assert "(after 4 attempts)" in result.stderr
    assert seen["/reset/9"] == 4
