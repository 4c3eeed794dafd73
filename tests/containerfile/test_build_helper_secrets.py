"""The build helper's use of a build secret, run as a step runs it: a repo file with the
credentials for the step, a download with them in a curl config file; the secret's content
is never printed."""

from __future__ import annotations

import base64
import hashlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.universe.httpserve import QuietHTTPServer

HELPER = ROOT / "nestcustom" / "containerfile" / "build-helper.sh"
PASSWORD = 'p@ss:w"rd\\x'


def helper(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(HELPER), *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("end", ["\n", ""])  # a secret written by `echo -n` has no newline
def test_repo_auth_writes_the_credentials_for_root_only(tmp_path: Path, end: str) -> None:
    (tmp_path / "src.repo").write_text("[private]\nname=private\nbaseurl=https://r.example/\n")
    (tmp_path / "secret").write_text(f"deploy:{PASSWORD}{end}")
    done = helper("repo-auth", tmp_path / "src.repo", tmp_path / "secret", tmp_path / "out.repo")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.repo").read_text() == (
        f"[private]\nname=private\nbaseurl=https://r.example/\nusername=deploy\npassword={PASSWORD}\n"
    )
    assert (tmp_path / "out.repo").stat().st_mode & 0o777 == 0o600
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no build secret at"),
        ("", "is empty"),
        ("only-a-token-xyz\n", "is not USER:PASSWORD"),
    ],
)
def test_repo_auth_refuses_a_bad_secret_without_printing_it(
    tmp_path: Path, content: str | None, says: str
) -> None:
    (tmp_path / "src.repo").write_text("[private]\n")
    if content is not None:
        (tmp_path / "secret").write_text(content)
    done = helper("repo-auth", tmp_path / "src.repo", tmp_path / "secret", tmp_path / "out.repo")
    assert done.returncode == 1
    assert says in done.stderr
    assert "only-a-token-xyz" not in done.stderr
    assert not (tmp_path / "out.repo").exists()


class _Basic(http.server.SimpleHTTPRequestHandler):
    expected = "Basic " + base64.b64encode(f"deploy:{PASSWORD}".encode()).decode()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "tool").write_bytes(b"tool\n")
    server = QuietHTTPServer(("127.0.0.1", 0), partial(_Basic, directory=str(tmp_path / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tool"
    server.shutdown()


@pytest.mark.parametrize(("user", "ok"), [("deploy", True), ("intruder", False)])
def test_fetch_auth_sends_the_secrets_credentials(
    tmp_path: Path, site: str, user: str, ok: bool
) -> None:
    (tmp_path / "secret").write_text(f"{user}:{PASSWORD}\n")
    sha = hashlib.sha256(b"tool\n").hexdigest()
    dest = tmp_path / "out" / "tool"
    before = set(Path("/tmp").glob("nestcustom-curl-auth.*"))  # another run's are not ours
    done = helper("files", "--fetch-auth", tmp_path / "secret", site, sha, dest, "0755", "-")
    assert (done.returncode == 0) is ok, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    if ok:
        assert dest.read_bytes() == b"tool\n"
        assert dest.stat().st_mode & 0o777 == 0o755
    else:
        assert "401" in done.stderr
    assert set(Path("/tmp").glob("nestcustom-curl-auth.*")) == before  # no config file left
