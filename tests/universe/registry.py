"""The Distribution registry (Debian's docker-registry) on 127.0.0.1, for the tests."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path  # its storage directory
    log: Path

    def tags(self, repository: str) -> list[str]:
        try:
            with urllib.request.urlopen(
                f"http://{self.host}/v2/{repository}/tags/list", timeout=10
            ) as r:
                return list(json.load(r).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise

    def blob_uploads(self) -> int:
        """Blob uploads completed so far (PUTs that finished an upload), from the access log."""
        return sum(
            1
            for line in self.log.read_text(errors="replace").splitlines()
            if '"PUT /v2/' in line and "/blobs/uploads/" in line and '" 201 ' in line
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash (the only kind the registry takes)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt: fine for a test fixture
        import crypt

    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"


@contextlib.contextmanager
def run_registry(workdir: Path, login: tuple[str, str] | None = None) -> Iterator[Registry]:
    """A registry on 127.0.0.1; with `login` (user, password), one that requires it."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed: run scripts/setup-host")
    port = free_port()
    root = workdir / "storage"
    root.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: info, accesslog: {disabled: false}}\n"
        f"storage: {{filesystem: {{rootdirectory: {root}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    if login:
        (workdir / "htpasswd").write_text(htpasswd_line(*login))
        with config.open("a") as out:
            out.write(f"auth: {{htpasswd: {{realm: nctest, path: {workdir / 'htpasswd'}}}}}\n")
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and login:  # up, and asking for the login
                    break
                raise
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"docker-registry did not start: {log.read_text()[-500:]}"
                    ) from None
                time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", root, log)
    finally:
        process.terminate()
        process.wait(timeout=10)
