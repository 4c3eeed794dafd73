"""SSH to hosts through the OpenSSH client: the user's keys, agent and config just work.

Security defaults: host keys are verified against known_hosts (new keys only
with an explicit flag), BatchMode forbids password prompts, and a remote
command is always an argument list joined with `shlex.join`, so no string from
an inventory or an image reference reaches the remote shell unquoted. One
control connection per host is reused for every command of a rollout.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from nestcustom import proc
from nestcustom.deploy.inventory import Host
from nestcustom.errors import NestcustomError
from nestcustom.sanitize import clean


class Failure(str, Enum):
    UNREACHABLE = "unreachable"
    AUTH = "authentication refused"
    HOST_KEY_CHANGED = "host key changed"
    HOST_KEY_UNKNOWN = "host key unknown"
    COMMAND = "command failed"


class SshError(NestcustomError):
    @staticmethod
    def clean_tail(stderr: str, lines: int = 3) -> list[str]:
        """The last lines of a host's stderr, safe to show."""
        return clean(stderr).strip().splitlines()[-lines:]

    def __init__(
        self,
        host: Host,
        failure: Failure,
        message: str,
        hint: str | None = None,
        returncode: int = 255,
        stderr: str = "",
    ) -> None:
        super().__init__(f"{host.name}: {message}", hint)
        self.failure = failure
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class SshOptions:
    control_dir: Path
    accept_new_host_keys: bool = False
    connect_timeout: int = 10


_HINTS = {
    Failure.HOST_KEY_CHANGED: "the host's key differs from known_hosts: if the host was really "
    "reinstalled, verify the new key and update known_hosts (never skip the check)",
    Failure.HOST_KEY_UNKNOWN: "add the host's key to known_hosts after checking its fingerprint, "
    "or pass --accept-new-host-keys to trust keys of hosts not yet known",
    Failure.AUTH: "check the user and key in the inventory, or that your SSH agent holds the key",
    Failure.UNREACHABLE: "is the host up and the address and port right?",
}


def classify(stderr: str) -> Failure:
    text = stderr.lower()
    if "remote host identification has changed" in text or (
        "host key for" in text and "has changed" in text
    ):
        return Failure.HOST_KEY_CHANGED
    if "host key verification failed" in text or "no matching host key" in text:
        return Failure.HOST_KEY_UNKNOWN
    if "permission denied" in text or "too many authentication failures" in text:
        return Failure.AUTH
    return Failure.UNREACHABLE


@dataclass(frozen=True)
class Endpoint:
    """Where ssh really goes for a host, once its config is applied."""

    hostname: str
    port: int
    user: str
    proxied: bool = False  # through a ProxyJump or ProxyCommand: the address itself may not greet


def parse_ssh_g(text: str, host: Host) -> Endpoint:
    """`ssh -G`'s answer (the configuration ssh would use, one `key value` a line)."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key.lower(), value.strip())
    port = config.get("port", "")
    return Endpoint(
        config.get("hostname") or host.address,
        int(port) if port.isdigit() else host.port or 22,
        config.get("user") or host.user or "root",
        config.get("proxyjump", "none") != "none" or config.get("proxycommand", "none") != "none",
    )


class Connection:
    """Commands on one host."""

    def __init__(self, host: Host, options: SshOptions) -> None:
        self.host = host
        self.options = options
        self._endpoint: Endpoint | None = None

    def endpoint(self) -> Endpoint:
        """Where ssh goes for this host. When the inventory leaves the port or the user to the
        ssh_config, `ssh -G` says what the config makes of them (it reads the config and
        connects nowhere); else the inventory's values, which the command line imposes."""
        if self._endpoint is None:
            host = self.host
            if host.port is not None and host.user is not None and host.ssh_config is None:
                self._endpoint = Endpoint(host.address, host.port, host.user)
            else:
                done = proc.run(
                    [*self.ssh_options(), "-G", "--", host.address], check=False, timeout=10
                )
                self._endpoint = parse_ssh_g(done.stdout if done.returncode == 0 else "", host)
        return self._endpoint

    @property
    def needs_sudo(self) -> bool:
        return self.host.sudo or self.endpoint().user != "root"

    def ssh_argv(self) -> list[str]:
        """ssh, its options, `--`, the destination: nothing after `--` can be read as an option."""
        return [*self.ssh_options(), "--", self.host.address]

    def ssh_options(self) -> list[str]:
        host, opts = self.host, self.options
        argv = ["ssh"]
        if host.ssh_config:
            argv += ["-F", host.ssh_config]
        # Only what the inventory sets: the rest is the ssh_config's (an alias's Port and User).
        if host.port is not None:
            argv += ["-p", str(host.port)]
        if host.user is not None:
            argv += ["-l", host.user]
        argv += [
            "-o",
            "BatchMode=yes",
            "-o",
            f"StrictHostKeyChecking={'accept-new' if opts.accept_new_host_keys else 'yes'}",
            "-o",
            f"ConnectTimeout={opts.connect_timeout}",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={opts.control_dir}/%C",
            "-o",
            "ControlPersist=60",
            "-o",
            "LogLevel=ERROR",
        ]
        if host.key:
            argv += ["-i", host.key, "-o", "IdentitiesOnly=yes"]
        if host.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={host.known_hosts}"]
        return argv

    def run(
        self,
        command: Sequence[str],
        *,
        privileged: bool = False,
        check: bool = True,
        timeout: float = 600,
    ) -> proc.Result:
        """Run `command` (an argument list) on the host; sudo when needed for a non-root user."""
        words = list(command)
        if privileged and self.needs_sudo:
            words = ["sudo", "-n", "--", *words]
        try:
            result = proc.run(
                [*self.ssh_argv(), shlex.join(words)],
                check=False,
                timeout=timeout,
                own_session=True,
            )
        except proc.CommandError as exc:
            raise SshError(
                self.host, Failure.UNREACHABLE, exc.message, _HINTS[Failure.UNREACHABLE]
            ) from exc
        stderr = clean(result.stderr)
        if result.returncode == 255:
            failure = classify(stderr)
            detail = stderr.strip().splitlines()[-1] if stderr.strip() else "ssh failed"
            detail = detail.removeprefix(f"{failure.value}: ")
            raise SshError(
                self.host,
                failure,
                f"{failure.value}: {detail}",
                _HINTS.get(failure),
                255,
                stderr,
            )
        if check and result.returncode != 0:
            tail = "\n".join(stderr.strip().splitlines()[-3:])
            raise SshError(
                self.host,
                Failure.COMMAND,
                f"{shlex.join(words)} failed (exit {result.returncode})"
                + (f": {tail}" if tail else ""),
                returncode=result.returncode,
                stderr=stderr,
            )
        return result

    def script(
        self,
        script: str,
        *args: str,
        privileged: bool = False,
        check: bool = True,
        timeout: float = 600,
        name: str = "a script",
    ) -> proc.Result:
        """Run a fixed shell script; user-made values only ever arrive as its arguments."""
        try:
            return self.run(
                ["sh", "-c", script, "sh", *args],
                privileged=privileged,
                check=check,
                timeout=timeout,
            )
        except SshError as exc:
            if exc.failure is not Failure.COMMAND:
                raise
            tail = "\n".join(exc.stderr.strip().splitlines()[-3:])
            raise SshError(
                self.host,
                Failure.COMMAND,
                f"{name} failed (exit {exc.returncode})" + (f": {tail}" if tail else ""),
                returncode=exc.returncode,
                stderr=exc.stderr,
            ) from exc

    def close(self) -> None:
        """Stop the control connection (it would also end by itself after 60 s)."""
        proc.run(
            [*self.ssh_options(), "-O", "exit", "--", self.host.address], check=False, timeout=10
        )


def answers(address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether an SSH server greets at `address`:`port` now (its `SSH-` version line, over
    plain TCP; no key exchange). Polling a rebooting host this way costs no ssh process and
    no key exchange, each of which costs the controller tens of milliseconds of CPU."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            greeting = b"\n"
            # RFC 4253 4.2: the server may send other lines before its version line.
            while b"\nSSH-" not in greeting and len(greeting) < 1024:
                chunk = conn.recv(256)
                if not chunk:
                    return False
                greeting += chunk
    except OSError:
        return False
    return b"\nSSH-" in greeting


@contextmanager
def ssh_session(accept_new_host_keys: bool) -> Iterator[SshOptions]:
    """SSH options for one run; control sockets live in a private directory removed after it,
    and the control connections this run opened are closed, not left to time out."""
    with tempfile.TemporaryDirectory(prefix="nc-ssh-") as control:
        try:
            yield SshOptions(Path(control), accept_new_host_keys)
        finally:
            for path in sorted(Path(control).iterdir()):
                if not _end_master(path):
                    proc.run(
                        ["ssh", "-o", f"ControlPath={path}", "-O", "exit", "--", "control"],
                        check=False,
                        timeout=10,
                    )


def _end_master(path: Path) -> bool:
    """End the control master listening on `path`: no `ssh -O exit` process per host.
    With ControlPersist the master is the background ssh that OpenSSH titles `ssh: PATH
    [mux]` (ssh.c control_persist_detach); the socket's peer credentials name the
    foreground ssh that bound it, which is gone by now (its pid may even be reused), so
    the master is found by that title among this user's ssh processes. False when it is
    not found (the caller then asks ssh)."""
    title = f"ssh: {path} [mux]".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            if (entry / "comm").read_text().strip() != "ssh":
                continue
            if (entry / "cmdline").read_bytes().split(b"\0")[0] != title:
                continue
            os.kill(int(entry.name), signal.SIGTERM)  # it removes its socket, ends the session
        except OSError:
            continue  # gone meanwhile, or not ours to read
        return True
    return False
