"""The push proxy in front of a real registry: a client that goes away in the middle of a
chunked upload gets an answer naming why the upload broke."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from nestcustom.image.pushproxy import push_proxy
from tests.universe.registry import Registry, run_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def test_an_upload_cut_mid_chunk_is_answered_with_the_cause(registry: Registry) -> None:
    with push_proxy(registry.host, tls_verify=False) as proxy:
        host, port = proxy.address.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(
                b"POST /v2/nc/cut/blobs/uploads/ HTTP/1.1\r\n"
                b"Host: " + proxy.address.encode() + b"\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                b"400\r\n" + b"x" * 10  # 1024 bytes announced, 10 sent
            )
            client.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 ")
    assert body.decode() == (
        f"nestcustom push proxy: the registry {registry.host}: "
        "the client closed the connection mid-chunk"
    )
