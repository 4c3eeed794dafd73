"""Test hosts: containers of the host image, each with its own sshd port on 127.0.0.1.

They share the host network, so the emulator's skopeo reaches the test
registry on 127.0.0.1 as a real host reaches its registry. A reboot restarts
the container (podman's restart policy); the host keys, deployments and
machine id live in the container and survive it, the boot id does not.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..registry import free_port
from ..session import CACHE

# What the hosts' rpm-ostree read from images' layers (kargs.d), by layer digest: shared, so
# a base layer is read once per machine rather than at every rebase of every host.
LAYER_CACHE = CACHE / "emu-layers"

FAULTS = "/etc/nestcustom-emu/faults"


def podman(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=300
    )
    if check and done.returncode:
        raise RuntimeError(f"podman {' '.join(args[:4])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


@dataclass(frozen=True)
class TestHost:
    __test__ = False  # a fixture type, not a test class

    name: str
    address: str
    port: int
    user: str
    container: str

    def exec(self, *argv: str, check: bool = True) -> str:
        return podman("exec", self.container, *argv, check=check)

    def inject(self, fault: str, value: str = "1") -> None:
        self.exec("sh", "-c", 'printf %s "$2" > "$1"', "sh", f"{FAULTS}/{fault}", value)

    def clear(self, fault: str) -> None:
        self.exec("rm", "-f", f"{FAULTS}/{fault}")

    def lock(self) -> str | None:
        """The rollout lock on the host, or None."""
        text = self.exec("cat", "/var/lib/nestcustom/rollout.lock", check=False)
        return text.strip() or None

    def commands_run(self) -> int:
        """Remote commands sshd started on this host (its log, kept by podman across boots)."""
        return self.sshd_log().count("Starting session: command")

    def connections(self) -> int:
        """SSH connections sshd accepted on this host."""
        return self.sshd_log().count("Accepted publickey")

    def sshd_log(self) -> str:
        done = subprocess.run(
            ["podman", "logs", self.container], capture_output=True, text=True, check=False
        )
        return done.stdout + done.stderr

    def boot_id(self) -> str:
        return self.exec("cat", "/proc/sys/kernel/random/boot_id").strip()

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.exec("rpm-ostree", "status", "--json"))
        return result

    def booted_digest(self) -> str | None:
        booted = next(d for d in self.status()["deployments"] if d["booted"])
        digest = booted.get("container-image-reference-digest")
        return str(digest) if digest else None

    def host_key_line(self) -> str:
        key = self.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()
        return f"[{self.address}]:{self.port} {key[0]} {key[1]}"

    def change_host_key(self) -> None:
        self.exec(
            "sh",
            "-c",
            "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && pkill -HUP -x sshd || true",
        )

    def refuse_auth(self) -> None:
        self.exec("rm", "-f", "/root/.ssh/authorized_keys", "/home/core/.ssh/authorized_keys")

    def stop(self) -> None:
        podman("stop", "-t", "1", self.container, check=False)

    def write(self, path: str, text: str) -> None:
        self.exec("sh", "-c", 'mkdir -p "${1%/*}" && printf %s "$2" > "$1"', "sh", path, text)

    def read(self, path: str) -> str | None:
        text = self.exec("cat", path, check=False)
        return text if text else None

    def trust_registry(self, registry: str) -> None:
        """Declare a plain-http registry, as an operator does on a real host."""
        conf = f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n'
        self.exec(
            "sh",
            "-c",
            'printf %s "$2" > "$1"',
            "sh",
            "/etc/containers/registries.conf.d/50-test-registry.conf",
            conf,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: sshd did not start within {timeout:.0f} s")


class HostFleet:
    """Start `count` hosts; remove them all at exit."""

    def __init__(
        self,
        count: int,
        image: str,
        workdir: Path,
        registry: str | None = None,
        versions: dict[str, str] | None = None,
        skopeo: dict[str, str] | None = None,
        origin_layers: tuple[str, ...] = (),
    ) -> None:
        """`versions`: rpm-ostree version per host name (default 2022.16; 2022.8 is SP1).
        `skopeo`: the skopeo version a host reports (default 1.9.3; from 1.13 its image proxy
        enforces policy.json). `origin_layers`: the layers of the base the hosts were
        installed from; given, a booted image's trust files reach the host's /etc."""
        self.count = count
        self.versions = versions or {}
        self.skopeo = skopeo or {}
        self.origin_layers = origin_layers
        self.image = image
        self.workdir = workdir
        self.registry = registry
        self.hosts: list[TestHost] = []
        self.client_key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.tag = uuid.uuid4().hex[:8]

    def __enter__(self) -> HostFleet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        LAYER_CACHE.mkdir(parents=True, exist_ok=True)
        if not self.client_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)],
                check=True,
            )
        public = (self.client_key.with_suffix(".pub")).read_text()
        try:
            for index in range(1, self.count + 1):
                port = free_port()
                container = f"nc-host-{self.tag}-{index}"
                podman(
                    "run",
                    "-d",
                    "--privileged",
                    "--network=host",
                    "--restart=always",
                    "--name",
                    container,
                    "--volume",
                    f"{LAYER_CACHE}:/var/cache/nestcustom-emu-layers",
                    "--env",
                    f"NC_RPM_OSTREE={self.versions.get(f'host{index}', '2022.16')}",
                    "--env",
                    f"NC_SKOPEO_VERSION={self.skopeo.get(f'host{index}', '1.9.3')}",
                    self.image,
                    "/usr/local/sbin/nc-init",
                    str(port),
                )
                host = TestHost(f"host{index}", "127.0.0.1", port, "root", container)
                for home, owner in (("/root", "root"), ("/home/core", "core")):
                    host.exec(
                        "sh",
                        "-c",
                        'printf %s "$1" > "$2/.ssh/authorized_keys" && chown "$3" "$2/.ssh/authorized_keys"'
                        ' && chmod 600 "$2/.ssh/authorized_keys"',
                        "sh",
                        public,
                        home,
                        owner,
                    )
                if self.registry:
                    host.trust_registry(self.registry)
                if self.origin_layers:
                    host.write("/etc/nestcustom-emu/origin-layers", "\n".join(self.origin_layers))
                self.hosts.append(host)
            for host in self.hosts:
                host.wait_ready()
            self.write_known_hosts()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def write_known_hosts(self) -> None:
        self.known_hosts.write_text("".join(h.host_key_line() + "\n" for h in self.hosts))

    def inventory(self, path: Path, users: dict[str, str] | None = None) -> Path:
        users = users or {}
        rows = [
            f"  - {{name: {h.name}, address: {h.address}, port: {h.port}"
            + (f", user: {users[h.name]}" if h.name in users else "")
            + "}\n"
            for h in self.hosts
        ]
        path.write_text(
            f"defaults: {{user: root, key: {self.client_key}, known_hosts: {self.known_hosts}}}\n"
            "hosts:\n" + "".join(rows)
        )
        return path

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for host in self.hosts:
            podman("rm", "-f", "-t", "0", host.container, check=False)
