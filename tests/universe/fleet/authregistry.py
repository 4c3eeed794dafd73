"""A second Distribution registry on 127.0.0.1 that wants a password (htpasswd, bcrypt),
for the registry-credential cases of the fleet tests."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..registry import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # libxcrypt's bcrypt; the registry accepts only bcrypt htpasswd entries


@dataclass(frozen=True)
class AuthRegistry:
    host: str
    user: str
    password: str

    def auth_json(self) -> str:
        """The containers-auth.json that lets skopeo (and a host's rpm-ostree) in."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return json.dumps({"auths": {self.host: {"auth": token}}})


@contextlib.contextmanager
def run_auth_registry(workdir: Path) -> Iterator[AuthRegistry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed: run scripts/setup-host")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user, password = "fleet", "not-a-real-secret"
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'storage'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
        f"auth: {{htpasswd: {{realm: nestcustom-test, path: {htpasswd}}}}}\n"
    )
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, and wants credentials
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the password-protected registry did not start")
            time.sleep(0.1)
        yield AuthRegistry(f"127.0.0.1:{port}", user, password)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
