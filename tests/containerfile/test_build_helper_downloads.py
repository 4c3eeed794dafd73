"""The build helper's downloads against a server that misbehaves, run in a throwaway root
with the real curl: a stall fails with the URL and a hint, a broken connection is tried
again with backoff, and a failed download leaves nothing behind."""

from __future__ import annotations

import hashlib
import http.server
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from subprocess import CompletedProcess
from typing import ClassVar

import pytest

from tests.universe.helper_root import HelperRoot
from tests.universe.httpserve import QuietHTTPServer

BODY = b"the downloaded tool\n" * 100
SHA = hashlib.sha256(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok, /stall, /reset/N and /busy/N (the first N requests reset or get a 503), /missing."""

    seen: ClassVar[Counter[str]] = Counter()
    times: ClassVar[list[float]] = []  # when each request came

    def do_GET(self) -> None:  # the http.server API's name
        self.seen[self.path] += 1
        self.times.append(time.monotonic())
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
    _Handler.times = []
    server = QuietHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.seen
    finally:
        server.shutdown()
        server.server_close()


def fetch(box: HelperRoot, url: str) -> CompletedProcess[str]:
    return box.helper(
        "files", "--fetch", url, SHA, "/usr/lib/tool", "0644", "-",
        env={"NESTCUSTOM_STALL_SECONDS": "2"},
    )  # fmt: skip


def test_a_download_that_stalls_fails_naming_the_url(
    box: HelperRoot, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    started = time.monotonic()
    result = fetch(box, f"{url}/stall")
    assert result.returncode == 1
    assert f"nestcustom: download of {url}/stall stalled: no data for 2 s" in result.stderr
    assert "mirror" in result.stderr  # the hint
    assert seen["/stall"] == 1  # not tried again: a stall is reported, not waited out
    assert time.monotonic() - started < 25
    assert box.left_in_tmp() == [] and not box.path("/usr/lib/tool").exists()


def test_a_reset_connection_is_tried_again_with_backoff(
    box: HelperRoot, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    result = fetch(box, f"{url}/reset/2")
    assert result.returncode == 0, result.stderr
    assert box.path("/usr/lib/tool").read_bytes() == BODY
    assert seen["/reset/2"] == 3
    retries = result.stderr.splitlines()
    assert [line.split(" (")[0] for line in retries] == [
        f"nestcustom: download of {url}/reset/2 broke"
    ] * 2
    assert [line.rsplit(" in ", 1)[1] for line in retries] == ["1 s", "2 s"]
    first, second, third = _Handler.times
    assert second - first >= 0.9 and third - second >= 1.9  # it waited as it said
    assert box.left_in_tmp() == []


def test_a_busy_server_is_tried_again_and_a_missing_file_is_not(
    box: HelperRoot, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    assert fetch(box, f"{url}/busy/1").returncode == 0
    assert seen["/busy/1"] == 2
    missing = fetch(box, f"{url}/missing")
    assert missing.returncode == 1
    assert f"nestcustom: cannot download {url}/missing: (22)" in missing.stderr
    assert "404" in missing.stderr
    assert seen["/missing"] == 1
    assert box.left_in_tmp() == []


def test_a_connection_that_keeps_breaking_fails_after_four_attempts(
    box: HelperRoot, site: tuple[str, Counter[str]]
) -> None:
    url, seen = site
    result = fetch(box, f"{url}/reset/9")
    assert result.returncode == 1
    assert f"nestcustom: cannot download {url}/reset/9:" in result.stderr
    assert result.stderr.splitlines()[-1].endswith(
        "(after 4 attempts); check the server, or use a mirror (build --download-mirror)"
    )
    assert [line.rsplit(" in ", 1)[1] for line in result.stderr.splitlines()[:-1]] == [
        "1 s", "2 s", "4 s",
    ]  # fmt: skip
    assert seen["/reset/9"] == 4
    assert box.left_in_tmp() == []
