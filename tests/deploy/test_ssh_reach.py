"""The end of a rollout's SSH control connections, against a real sshd on 127.0.0.1 (its
own keys, config and privilege-separation /run in a mount namespace; half a second to
start): Connection.close and ssh_session end the control master a run opened, and
ssh._end_master signals only an ssh process of this user."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nestcustom import proc
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.ssh import Connection, SshOptions, _end_master, ssh_session
from tests.deploy.test_reboot_wait import free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists() or shutil.which("ssh") is None,
    reason="root (sshd in a mount namespace), openssh-server and -client (scripts/setup-host)",
)

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
"""


@dataclass(frozen=True)
class Sshd:
    host: Host  # the inventory's entry for it: key, known_hosts, port, root


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    d = tmp_path / "sshd"
    d.mkdir()
    keygen(d / "host_key")
    keygen(d / "client")
    shutil.copy(d / "client.pub", d / "authorized_keys")
    port = free_port()
    (d / "config").write_text(SSHD_CONFIG.format(port=port, dir=d))
    kind, key = (d / "host_key.pub").read_text().split()[:2]
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    server = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs none /run && mkdir -m 755 /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"',
         "sh", str(d / "config")],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "sshd did not start"
                time.sleep(0.05)
        host = Host("h1", "127.0.0.1", port, "root", str(d / "client"), str(d / "known_hosts"))
        yield Sshd(host)
    finally:
        server.terminate()
        server.wait(10)


def master_pid(path: Path) -> int:
    """The control master of `path`: OpenSSH's backgrounded ssh, titled `ssh: PATH [mux]`."""
    found = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _title(entry) == f"ssh: {path} [mux]"
    ]
    assert len(found) == 1, found
    return found[0]


def _title(entry: Path) -> str:
    try:
        return entry.joinpath("cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def control() -> Iterator[Path]:
    """A control directory with a short path (a socket's path has at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="nc-t-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def opened(sshd: Sshd, control: Path) -> tuple[Connection, Path, int]:
    """A connection that ran a command: its control master stays (ControlPersist)."""
    conn = Connection(sshd.host, SshOptions(control))
    assert conn.run(["echo", "hello"]).stdout == "hello\n"
    (path,) = control.iterdir()
    pid = master_pid(path)
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"
    return conn, path, pid


def test_close_ends_the_control_master_a_connection_opened(control: Path, sshd: Sshd) -> None:
    conn, path, pid = opened(sshd, control)
    assert conn.run(["true"]).returncode == 0  # the master is reused: still the one
    assert master_pid(path) == pid
    conn.close()
    assert gone(pid) and not path.exists()


def test_end_master_stops_an_ssh_master_by_its_socket(control: Path, sshd: Sshd) -> None:
    _, path, pid = opened(sshd, control)
    assert _end_master(path) is True
    assert gone(pid) and not path.exists()
    assert _end_master(path) is False  # nothing listens any more


def test_a_session_ends_its_masters_and_removes_its_directory(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[list[str]] = []
    real = proc.run

    def run(argv: list[str], **more: Any) -> proc.Result:
        ran.append(list(argv))
        return real(argv, **more)

    monkeypatch.setattr(proc, "run", run)
    with ssh_session(False) as options:
        control = options.control_dir
        _, _, pid = opened(sshd, control)
    assert gone(pid) and not control.exists()
    assert [a for a in ran if "-O" in a] == []  # ended by its signal: no `ssh -O exit` process


def test_a_socket_or_process_that_is_not_an_ssh_master_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    listener = subprocess.Popen(
        [sys.executable, "-c",
         "import socket, sys, time\n"
         "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print(flush=True)\n"
         "time.sleep(60)\n", str(path)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert listener.stdout is not None and listener.stdout.readline() == b"\n"
        assert _end_master(path) is False
        assert listener.poll() is None  # not signalled
    finally:
        listener.kill()
        listener.wait()
    # A process of this user that only looks like the master (its title) is not ssh.
    path = tmp_path / "control"
    impostor = subprocess.Popen(["bash", "-c", f'exec -a "ssh: {path} [mux]" sleep 60'])
    try:
        deadline = time.monotonic() + 5
        while _title(Path(f"/proc/{impostor.pid}")) != f"ssh: {path} [mux]":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert _end_master(path) is False
        assert impostor.poll() is None
    finally:
        impostor.kill()
        impostor.wait()
    assert _end_master(tmp_path / "missing") is False
    (tmp_path / "file").write_text("")
    assert _end_master(tmp_path / "file") is False
