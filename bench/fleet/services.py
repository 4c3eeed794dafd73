"""The real parts of the simulation: etcd (Debian's etcd-server), two `nestcustom fleetlock
serve` processes on it keeping one budget, a docker-registry with two tiny images, and
`nestcustom promote` / `nestcustom fleet status` run as a user runs them.

The two servers listen on the same port of 127.0.0.1 and 127.0.0.2, both addresses of one
name (`fleetlock.sim`, in the hosts file the simulated hosts see): curl tries the next
address when one refuses, as a client of two FleetLock servers behind one DNS name does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fleet.conftest import EtcdServer
from tests.fleet.test_promote_registry import push
from tests.universe.registry import Registry, run_registry

REPOSITORY = "nestos/agent"
RING = "stable"
GROUP = "workers"
NAME = "fleetlock.sim"
ADDRESSES = ("127.0.0.1", "127.0.0.2")  # server 0, server 1
TICK = os.sysconf("SC_CLK_TCK")


def free_port_on_both() -> int:
    """A port free on every server address."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((ADDRESSES[0], 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind((ADDRESSES[1], port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def nestcustom(*args: str) -> list[str]:
    return [sys.executable, "-m", "nestcustom", *args]


@dataclass
class Server:
    """One `nestcustom fleetlock serve`; its CPU and peak RSS read from /proc while alive."""

    address: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    cpu_seconds: float = 0.0
    peak_rss_kib: int = 0

    def start(self, etcd_url: str, budget: int, halt_after: int) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                nestcustom(
                    "fleetlock", "serve", "--etcd", etcd_url,
                    "--listen", f"{self.address}:{self.port}",
                    "--group", f"{GROUP}={budget}", "--halt-after", str(halt_after),
                ),
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while b"FleetLock on" not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fleetlock serve did not start: {self.log.read_text()[-500:]}")
            time.sleep(0.05)

    def sample(self) -> None:
        """Keep the CPU seconds and peak RSS so far (what a kill would lose)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
            self.cpu_seconds = (int(stat[11]) + int(stat[12])) / TICK  # utime, stime
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kib = int(line.split()[1])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.sample()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


@dataclass
class Services:
    work: Path
    etcd: EtcdServer
    registry: Registry
    servers: list[Server]
    images: dict[str, str]  # "v1", "v2" -> manifest digest
    port: int
    halt_after: int
    journal: Path = field(init=False)

    def __post_init__(self) -> None:
        self.journal = self.work / "promotions.jsonl"

    @property
    def fleetlock_url(self) -> str:
        return f"http://{NAME}:{self.port}/"

    @property
    def image(self) -> str:
        return f"{self.registry.host}/{REPOSITORY}"

    def promote(self, version: str) -> None:
        done = subprocess.run(
            nestcustom(
                "promote", f"{self.image}@{self.images[version]}", "--ring", RING,
                "--journal", str(self.journal), "--no-tls-verify",
            ),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"nestcustom promote failed: {done.stderr.strip()}")

    def fleet_status(self) -> tuple[str, dict[str, object]]:
        """`nestcustom fleet status`, as text and as its --json document."""
        command = nestcustom("fleet", "status", "--etcd", self.etcd.url)
        runs = [
            subprocess.run([*command, *extra], capture_output=True, text=True, check=False)
            for extra in ((), ("--json",))
        ]
        document = json.loads(runs[1].stdout) if runs[1].returncode == 0 else {}
        return runs[0].stdout + runs[0].stderr, document

    def registry_requests(self, since: int) -> int:
        """Requests the registry logged after byte `since` of its log."""
        with self.registry.log.open("rb") as log:
            log.seek(since)
            return sum(1 for line in log if b'"GET /v2/' in line or b'"HEAD /v2/' in line)

    def registry_log_size(self) -> int:
        return self.registry.log.stat().st_size


@contextlib.contextmanager
def running(work: Path, budget: int, halt_after: int, servers: int = 2) -> Iterator[Services]:
    """Everything up, ring `stable` on v1; all of it stopped on the way out."""
    etcd = EtcdServer(work / "etcd", _free_port())
    etcd.start()
    started: list[Server] = []
    try:
        with run_registry(work / "registry") as registry:
            images = {v: push(registry, work, REPOSITORY, v) for v in ("v1", "v2")}
            port = free_port_on_both()
            for index in range(servers):
                server = Server(ADDRESSES[index], port, work / f"fleetlock-{index}.log")
                started.append(server)
                server.start(etcd.url, budget, halt_after)
            services = Services(work, etcd, registry, started, images, port, halt_after)
            services.promote("v1")
            _wait_registry(registry)
            yield services
    finally:
        for server in started:
            server.stop()
        etcd.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_registry(registry: Registry) -> None:
    with urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=10):
        pass
