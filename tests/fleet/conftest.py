"""A real etcd (Debian's etcd-server) for the FleetLock server's tests, and servers on it."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from nestcustom.fleet.etcd import Etcd
from nestcustom.fleet.lockserver import handler_for
from nestcustom.fleet.lockstore import Budget, LockStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EtcdServer:
    """etcd on 127.0.0.1, its data kept in `data` so a restart keeps every key."""

    data: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        peer = free_port()
        self.process = subprocess.Popen(
            [
                "etcd", "--data-dir", str(self.data), "--name", "nctest",
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"nctest=http://127.0.0.1:{peer}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                    if b"true" in answer.read():
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("etcd did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path / "etcd", free_port())
    server.start()
    yield server
    server.stop()


Serve = Callable[..., str]


@pytest.fixture
def fleetlock(etcd: EtcdServer) -> Iterator[Serve]:
    """serve(**budget) -> the base URL of a FleetLock server on the test etcd."""
    servers: list[ThreadingHTTPServer] = []

    def serve(**budget: object) -> str:
        slots = budget.pop("slots", {"default": 1})
        store = LockStore(Etcd(etcd.url), Budget(slots, **budget))  # type: ignore[arg-type]
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(store, lambda text: None))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
