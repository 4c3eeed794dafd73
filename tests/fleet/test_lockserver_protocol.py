"""The FleetLock server's HTTP edges over raw sockets: a request without Content-Length,
bodies at the size limits, a missing group, the headers of its answers, the line it
starts with, and a stop signal while a client is stuck mid-request."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys

from tests.fleet.conftest import EtcdServer, Serve, free_port
from tests.fleet.test_lockserver import take

PROTOCOL = {"fleet-lock-protocol": "true"}


def exchange(base: str, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
    host, port = base.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/v1/pre-reboot", body=body, headers=headers)
    return connection.getresponse()


def answer_of(base: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    answer = exchange(base, body, headers)
    return answer.status, json.loads(answer.read())


def test_a_request_without_content_length_is_refused_at_once(fleetlock: Serve) -> None:
    base = fleetlock()
    port = int(base.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/pre-reboot HTTP/1.1\r\nHost: x\r\nfleet-lock-protocol: true\r\n\r\n"
        )
        head, _, body = sock.makefile("rb").read().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400 ")
    assert json.loads(body) == {
        "kind": "invalid_client_identity",
        "value": "missing or oversized body",
    }


def test_a_one_byte_body_is_read_and_refused_as_not_json(fleetlock: Serve) -> None:
    status, answer = answer_of(fleetlock(), b"1", PROTOCOL)
    assert (status, answer["kind"]) == (400, "invalid_client_identity")
    assert answer["value"].startswith('body is not {"client_params": {...}}: ')


def test_a_body_of_exactly_the_limit_is_taken(fleetlock: Serve) -> None:
    base = fleetlock()
    body = json.dumps({"client_params": {"id": "h1", "group": "default"}, "pad": ""}).encode()
    body = body[:-2] + b" " * (64 * 1024 - len(body)) + body[-2:]
    assert len(body) == 64 * 1024
    assert answer_of(base, body, PROTOCOL) == (200, {})
    assert take(base, "h2") == 500  # h1 holds the one slot


def test_a_request_without_a_group_is_refused_not_served_a_default(fleetlock: Serve) -> None:
    body = json.dumps({"client_params": {"id": "h1"}}).encode()
    assert answer_of(fleetlock(), body, PROTOCOL) == (
        400,
        {
            "kind": "invalid_client_identity",
            "value": "client_params.group is missing or not ^[a-zA-Z0-9.-]+$",
        },
    )


def test_answers_say_their_server_type_and_length(fleetlock: Serve) -> None:
    base = fleetlock()
    granted = exchange(
        base, json.dumps({"client_params": {"id": "a", "group": "default"}}).encode(), PROTOCOL
    )
    assert granted.getheader("Server", "").startswith("nestcustom-fleetlock ")
    assert (granted.getheader("Content-Type"), granted.getheader("Content-Length")) == (
        "application/json",
        "2",
    )
    assert granted.read() == b"{}"
    refused = exchange(base, b"{}", PROTOCOL)
    body = refused.read()
    assert refused.getheader("Content-Length") == str(len(body)) and len(body) > 2


def test_serve_says_its_groups_and_stops_on_sigterm_despite_a_stuck_client(
    etcd: EtcdServer,
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nestcustom", "fleetlock", "serve", "--etcd", etcd.url,
         "--listen", f"127.0.0.1:{port}", "--group", "workers=2", "--group", "default=1"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        assert server.stderr.readline() == (
            f"FleetLock on http://127.0.0.1:{port}/ (default=1, workers=2 slots)\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stuck:
            # headers promising a body that never comes: its thread waits on the read
            stuck.sendall(
                b"POST /v1/pre-reboot HTTP/1.1\r\nHost: x\r\nfleet-lock-protocol: true\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            assert take(f"http://127.0.0.1:{port}/", "w1", group="workers") == 200
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=15) == 143
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
