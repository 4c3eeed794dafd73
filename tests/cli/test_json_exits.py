"""`--json` gives exactly one JSON document on stdout, on every exit path of every command.

One table drives each command through the paths that need no podman build or
host: bad input and usage (exit 2), failures (exit 1), success where it is
cheap, and Ctrl-C (130) or SIGTERM (143) while the command waits on a server
that accepted the connection and never answers. The paths that need images or
hosts are in tests/cli/test_json_exits_universe.py. The README's promise
("Exit codes" and "--json") rests on these two files.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nestcustom.deploy.ssh import SshOptions

RECIPE = """\
name: r
base: {image: BASE}
layers:
  - {name: tools, install: [strace]}
"""


class SilentServer:
    """Accepts TCP connections and never sends a byte: a registry or host that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.connected.set()

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # after `nestcustom`; {silent} and {closed} are ports
    code: int
    kind: str | None = None  # the error's kind; None: success
    signal: signal.Signals | None = None  # sent once the command reached the silent server


def world(tmp: Path, silent_port: int, closed: int) -> dict[str, str]:
    """A project with a valid and a broken recipe, inventories and a fake ISO."""
    (tmp / "recipes").mkdir()
    (tmp / "recipes" / "ok.yaml").write_text(RECIPE.replace("BASE", "localhost/nctest/none:1"))
    (tmp / "recipes" / "hang.yaml").write_text(
        RECIPE.replace("BASE", f"127.0.0.1:{silent_port}/nestos/base:1").replace(
            "name: r", "name: hang"
        )
    )
    (tmp / "recipes" / "gone.yaml").write_text(
        RECIPE.replace("BASE", f"127.0.0.1:{closed}/nestos/base:1").replace("name: r", "name: gone")
    )
    (tmp / "bad").mkdir()
    (tmp / "bad" / "bad.yaml").write_text(
        "name: bad\nbase: {image: x}\nlayers: [{name: a, instal: [b]}]\n"
    )
    (tmp / "silent.yaml").write_text(
        f"hosts:\n  - {{name: h1, address: 127.0.0.1, port: {silent_port}}}\n"
    )
    (tmp / "closed.yaml").write_text(
        f"hosts:\n  - {{name: h1, address: 127.0.0.1, port: {closed}}}\n"
    )
    (tmp / "broken.yaml").write_text("hosts:\n  - {name: h1, address: [\n")
    with zipfile.ZipFile(tmp / "dvd.iso", "w") as archive:
        archive.writestr("readme.txt", "not an ISO")
    return {"silent": str(silent_port), "closed": str(closed)}


SILENT_IMAGE = "127.0.0.1:{silent}/nestos/x:1"
CLOSED_IMAGE = "127.0.0.1:{closed}/nestos/x:1"
PINNED = "127.0.0.1:{port}/nestos/x@sha256:" + "a" * 64

CASES = [
    # validate
    Case("validate-ok", ("validate", "recipes/ok.yaml", "--json"), 0),
    Case("validate-bad-recipe", ("validate", "bad/bad.yaml", "--json"), 2, "bad-input"),
    Case("validate-usage", ("validate", "--json", "--bogus", "recipes/ok.yaml"), 2, "usage"),
    # build
    Case("build-no-recipe", ("build", "recipes/none.yaml", "--json"), 2, "bad-input"),
    Case("build-bad-recipe", ("build", "bad/bad.yaml", "--json"), 2, "bad-input"),
    Case("build-usage", ("build", "recipes/ok.yaml", "--json", "--release-tags"), 2, "usage"),
    Case("build-base-unreachable", ("build", "recipes/gone.yaml", "--json"), 1, "failure"),
    Case(
        "build-sigint", ("build", "recipes/hang.yaml", "--json"), 130, "interrupted", signal.SIGINT
    ),
    Case(
        "build-sigterm",
        ("build", "recipes/hang.yaml", "--json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
    # test
    Case("test-no-recipe", ("test", "recipes/none.yaml", "--image", "x", "--json"), 2, "bad-input"),
    Case(
        "test-image-missing",
        ("test", "recipes/ok.yaml", "--image", "localhost/nctest/never-built:1", "--json"),
        1,
        "failure",
    ),
    # deploy
    Case("deploy-no-inventory", ("deploy", "-i", "none.yaml", "x/y:1", "--json"), 2, "bad-input"),
    Case(
        "deploy-broken-inventory",
        ("deploy", "-i", "broken.yaml", "x/y:1", "--json"),
        2,
        "bad-input",
    ),
    Case(
        "deploy-dry-run-unreachable",
        ("deploy", "-i", "closed.yaml", CLOSED_IMAGE, "--dry-run", "--json"),
        1,
        "failure",
    ),
    Case(
        "deploy-sigint",
        ("deploy", "-i", "closed.yaml", SILENT_IMAGE, "--json"),
        130,
        "interrupted",
        signal.SIGINT,
    ),
    Case(
        "deploy-sigterm",
        ("deploy", "-i", "closed.yaml", SILENT_IMAGE, "--dry-run", "--json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
    # status
    Case("status-no-inventory", ("status", "-i", "none.yaml", "--json"), 2, "bad-input"),
    Case("status-unreachable", ("status", "-i", "closed.yaml", "--json"), 1, "failure"),
    Case(
        "status-sigint",
        ("status", "-i", "silent.yaml", "--json"),
        130,
        "interrupted",
        signal.SIGINT,
    ),
    Case(
        "status-sigterm",
        ("status", "-i", "silent.yaml", "--json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
    # rollback
    Case("rollback-no-inventory", ("rollback", "-i", "none.yaml", "--json"), 2, "bad-input"),
    Case("rollback-unreachable", ("rollback", "-i", "closed.yaml", "--json"), 1, "failure"),
    Case(
        "rollback-sigterm",
        ("rollback", "-i", "silent.yaml", "--json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
    # plan
    Case("plan-no-recipe", ("plan", "recipes/none.yaml", "--json"), 2, "bad-input"),
    Case("plan-sigint", ("plan", "recipes/hang.yaml", "--json"), 130, "interrupted", signal.SIGINT),
    Case(
        "plan-sigterm", ("plan", "recipes/hang.yaml", "--json"), 143, "interrupted", signal.SIGTERM
    ),
    # matrix
    Case("matrix-outside-git", ("matrix", "--format", "json"), 0),
    Case("matrix-usage", ("matrix", "--format", "json", "--bogus"), 2, "usage"),
    Case("matrix-no-recipes", ("--project", "bad", "matrix", "--format=json"), 2, "bad-input"),
    # diff
    Case("diff-recipes", ("diff", "recipes/ok.yaml", "recipes/gone.yaml", "--format", "json"), 0),
    Case(
        "diff-unreachable",
        ("diff", CLOSED_IMAGE, CLOSED_IMAGE, "--format", "json", "--no-tls-verify"),
        1,
        "failure",
    ),
    Case(
        "diff-sigterm",
        ("diff", SILENT_IMAGE, SILENT_IMAGE, "--format", "json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
    # fleet status
    Case(
        "fleet-status-bad-url", ("fleet", "status", "--etcd", "ftp://x", "--json"), 2, "bad-input"
    ),
    Case(
        "fleet-status-unreachable",
        ("fleet", "status", "--etcd", "http://127.0.0.1:{closed}", "--json"),
        1,
        "failure",
    ),
    Case(
        "fleet-status-sigterm",
        ("fleet", "status", "--etcd", "http://127.0.0.1:{silent}", "--json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
    # promote
    Case("promote-a-tag", ("promote", CLOSED_IMAGE, "--ring", "canary", "--json"), 2, "bad-input"),
    Case(
        "promote-unreachable",
        (
            "promote",
            PINNED.format(port="{closed}"),
            "--ring",
            "canary",
            "--json",
            "--no-tls-verify",
        ),
        1,
        "failure",
    ),
    Case(
        "promote-sigterm",
        ("promote", PINNED.format(port="{silent}"), "--ring", "canary", "--json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
    # base from-iso
    Case("from-iso-not-an-iso", ("base", "from-iso", "dvd.iso", "--json"), 2, "bad-input"),
    Case("from-iso-usage", ("base", "from-iso", "dvd.iso", "--push", "--json"), 2, "usage"),
    # supply chain: build --sign, keys generate, sbom, advisories
    Case("build-sign-usage", ("build", "recipes/ok.yaml", "--sign", "k.asc", "--json"), 2, "usage"),
    Case("keys-generate-ok", ("keys", "generate", "k", "--no-passphrase", "--json"), 0),
    Case("keys-generate-no-passphrase", ("keys", "generate", "k2", "--json"), 2, "bad-input"),
    Case(
        "keys-generate-usage",
        ("keys", "generate", "k3", "--no-passphrase", "--passphrase-file", "p", "--json"),
        2,
        "usage",
    ),
    Case("sbom-not-an-image", ("sbom", "not an image!", "--json"), 2, "bad-input"),
    Case("sbom-usage", ("sbom", "x", "--format", "xml", "--json"), 2, "usage"),
    Case("sbom-unreachable", ("sbom", "docker://" + CLOSED_IMAGE, "--json"), 1, "failure"),
    Case(
        "sbom-sigint",
        ("sbom", "docker://" + SILENT_IMAGE, "--json"),
        130,
        "interrupted",
        signal.SIGINT,
    ),
    Case("advisories-not-an-image", ("advisories", "not an image!", "--json"), 2, "bad-input"),
    Case(
        "advisories-sigterm",
        ("advisories", "docker://" + SILENT_IMAGE, "--json"),
        143,
        "interrupted",
        signal.SIGTERM,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_json_document_on_every_exit_path(case: Case, tmp_path: Path, silent: SilentServer) -> None:
    ports = world(tmp_path, silent.port, closed_port())
    argv = [a.format(**ports) for a in case.argv]
    env = {**os.environ, "HOME": str(tmp_path)}  # no known_hosts, no caches of the user's
    process = subprocess.Popen(
        [sys.executable, "-m", "nestcustom", *argv],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    if case.signal is not None:
        assert silent.connected.wait(60), "the command never reached the silent server"
        process.send_signal(case.signal)
        # Promptly: long before ssh's ConnectTimeout (10 s) or a registry timeout would
        # have ended the wait on the silent server by itself.
        stdout, stderr = process.communicate(timeout=SshOptions.connect_timeout / 2)
    else:
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == case.code, stderr
    document = json.loads(stdout)  # exactly one document: anything else fails to parse
    assert isinstance(document, dict)
    assert document["ok"] is (case.code == 0)
    assert document["exit_code"] == case.code
    commands = {"base": "base from-iso", "keys": "keys generate", "fleet": "fleet status"}
    assert document["command"] == commands.get(argv[0], case.id.split("-")[0])
    if case.kind is None:
        assert "error" not in document, document
    else:
        assert document["error"]["kind"] == case.kind, document
        assert document["error"]["message"]
        # The keys a tool reads: every error has a hint (text or null); a stop also says
        # which signal and what it left (text, empty when nothing).
        keys = {"kind", "message", "hint"} | ({"signal", "state"} if case.signal else set())
        assert set(document["error"]) - {"problems"} == keys, document  # problems: located
        assert document["error"]["hint"] is None or isinstance(document["error"]["hint"], str)
    if case.signal is not None:
        assert document["error"]["signal"] == case.signal.name
        assert isinstance(document["error"]["state"], str)
        assert f"interrupted by {case.signal.name}" in stderr
    assert "Traceback" not in stderr
