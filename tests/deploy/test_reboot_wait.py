"""Waiting for a rebooting host: the SSH greeting probe and the polls it gates."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nestcustom import proc
from nestcustom.deploy.hostrun import HostRun, Owner, RolloutOptions
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.signals import StopFlags
from nestcustom.deploy.ssh import Connection, SshOptions, answers

NEW_BOOT = "2" * 32
STATUS = '{"deployments": [], "transaction": null}'


@contextmanager
def greeter(greeting: bytes, port: int = 0) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that sends `greeting` to each client, then closes."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.1)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            with client:
                client.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        thread.join()
        server.close()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("greeting", "expected"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", True),
        (b"a banner line first\r\nSSH-2.0-OpenSSH_8.8\r\n", True),  # RFC 4253 4.2
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", False),
        (b"", False),
    ],
)
def test_the_probe_knows_an_ssh_server_by_its_greeting(greeting: bytes, expected: bool) -> None:
    with greeter(greeting) as port:
        assert answers("127.0.0.1", port, timeout=2) is expected


def test_the_probe_of_a_closed_port_says_no() -> None:
    assert answers("127.0.0.1", free_port(), timeout=2) is False


class CountingConnection(Connection):
    """Answers the boot-id poll as a host that came back; counts the polls (ssh processes)."""

    def __init__(self, host: Host) -> None:
        super().__init__(host, SshOptions(Path("/nonexistent")))
        self.polls: list[float] = []

    def script(self, script: str, *args: str, **_: object) -> proc.Result:
        self.polls.append(time.monotonic())
        out = f"{NEW_BOOT}\n==status\n{STATUS}"
        return proc.Result(0, out, "", out.encode())


def host_run(tmp_path: Path, port: int) -> tuple[HostRun, CountingConnection]:
    host = Host("web1", "127.0.0.1", port)
    conn = CountingConnection(host)
    journal = Journal.create(tmp_path / "j.jsonl", "rollout", {"id": "r"})
    run = HostRun(
        host,
        conn,
        None,
        RolloutOptions(reboot_timeout=20),
        journal,
        lambda *_: None,
        StopFlags(),
        Owner("r", str(tmp_path / "j.jsonl"), "controller"),
    )
    return run, conn


def test_no_ssh_poll_while_a_host_that_greeted_before_its_reboot_is_silent(
    tmp_path: Path,
) -> None:
    port = free_port()
    run, conn = host_run(tmp_path, port)
    run.greets_directly = True
    back = threading.Event()
    back_at: list[float] = []

    def boot() -> None:  # the host is down for 1.5 s, then its sshd greets until the test ends
        time.sleep(1.5)
        with greeter(b"SSH-2.0-OpenSSH_9.2\r\n", port):
            back_at.append(time.monotonic())
            back.wait()

    host = threading.Thread(target=boot)
    host.start()
    try:
        assert run.wait_for_new_boot("1" * 32) == f"back with boot id {NEW_BOOT}"
    finally:
        back.set()
        host.join()
    assert len(conn.polls) == 1 and conn.polls[0] >= back_at[0]
    assert run.after is not None


def test_a_silent_host_costs_no_ssh_process_and_is_reported_not_back(tmp_path: Path) -> None:
    run, conn = host_run(tmp_path, free_port())
    run.greets_directly = True
    run.options = RolloutOptions(reboot_timeout=1)
    with pytest.raises(Exception, match="did not come back within 1 s"):
        run.wait_for_new_boot("1" * 32)
    assert conn.polls == []


def test_without_a_direct_greeting_every_poll_is_an_ssh_attempt(tmp_path: Path) -> None:
    """Behind an ssh_config alias or ProxyJump the address may not greet: ssh decides."""
    run, conn = host_run(tmp_path, free_port())
    assert run.greets_directly is False
    assert run.wait_for_new_boot("1" * 32) == f"back with boot id {NEW_BOOT}"
    assert len(conn.polls) == 1


def test_no_poll_while_the_host_still_greets_on_its_way_down(tmp_path: Path) -> None:
    """sshd lives a moment after `systemctl reboot`: a poll then would find the old boot id
    and cost one more ssh process and remote command."""
    port = free_port()
    run, conn = host_run(tmp_path, port)
    run.greets_directly = True
    back = threading.Event()
    back_at: list[float] = []

    def reboot() -> None:  # greets 1 s more, down 0.7 s, then back
        with greeter(b"SSH-2.0-OpenSSH_9.2\r\n", port):
            time.sleep(1.0)
        time.sleep(0.7)
        with greeter(b"SSH-2.0-OpenSSH_9.2\r\n", port):
            back_at.append(time.monotonic())
            back.wait()

    host = threading.Thread(target=reboot)
    host.start()
    time.sleep(0.1)
    try:
        assert run.wait_for_new_boot("1" * 32) == f"back with boot id {NEW_BOOT}"
    finally:
        back.set()
        host.join()
    assert len(conn.polls) == 1 and conn.polls[0] >= back_at[0]
