"""Build secrets: a private repo and a download behind HTTP basic auth, their credentials
given with `build --secret`, used by their steps and found nowhere afterwards: not in a
layer, the history, the config or labels, the build's output or containerfiles/."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.image.universe import git_commit, nestcustom, podman, project, tag
from tests.universe.httpserve import QuietHTTPServer
from tests.universe.rpmrepo import RpmRepo

pytestmark = pytest.mark.universe
__all__ = ["project", "tag"]

USER, PASSWORD = "deploy", 'n0t-In-any-Layer:"\\x'
TOOL = b"#!/bin/sh\necho private tool\n"


class _Private(http.server.SimpleHTTPRequestHandler):
    """Files of `directory`, only with the right basic-auth header."""

    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def private_site(rpm_repo: RpmRepo, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """(URL, the Authorization headers it was sent): the repo at /repo/, a tool at /tool."""
    root = tmp_path / "private"
    root.mkdir()
    (root / "repo").symlink_to(rpm_repo.path)
    (root / "tool").write_bytes(TOOL)
    seen: list[str] = []
    handler = type("Handler", (_Private,), {"seen": seen})
    server = QuietHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()


def write_private_recipe(project: Path, base: str, site: str) -> None:
    sha = hashlib.sha256(TOOL).hexdigest()
    (project / "recipes" / "private.yaml").write_text(
        f'name: private\nbase: {{image: "{base}"}}\n'
        "layers:\n"
        "  - name: agent\n"
        "    install: [nc-hello]\n"
        f'    repos: [{{id: private, baseurl: "{site}/repo/", gpgcheck: false, secret: repo-cred}}]\n'
        "downloads:\n"
        f'  - {{url: "{site}/tool", sha256: "{sha}", dest: /usr/bin/private-tool, mode: "0755", secret: repo-cred}}\n'
        "tests:\n  commands:\n    - {run: [private-tool], stdout: private tool}\n"
    )


def everything_in(reference: str, tmp_path: Path) -> bytes:
    """Every byte of the image: its layers, config and manifest (podman save)."""
    archive = tmp_path / "image.tar"
    saved = podman("save", "--format", "oci-archive", "-o", str(archive), reference)
    assert saved.returncode == 0, saved.stderr
    out = io.BytesIO()
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            if member.isfile():
                data = outer.extractfile(member).read()  # type: ignore[union-attr]
                out.write(data)
                if data[:2] == b"\x1f\x8b":  # a gzipped layer: its files too
                    import gzip

                    out.write(gzip.decompress(data))
    return out.getvalue()


def test_a_private_repo_and_download_build_and_leave_no_trace(
    project: Path,
    nestos_sp2_image: str,
    private_site: tuple[str, list[str]],
    tag: str,
    tmp_path: Path,
) -> None:
    site, seen = private_site
    write_private_recipe(project, nestos_sp2_image, site)
    rendered = nestcustom("render", "--all", cwd=project)
    assert rendered.returncode == 0, rendered.stderr
    git_commit(project)
    secret = tmp_path / "cred"
    secret.write_text(f"{USER}:{PASSWORD}\n")
    # Without the secret: refused before anything is built.
    refused = nestcustom("build", "recipes/private.yaml", "--tag", tag, cwd=project)
    assert refused.returncode == 2
    assert "the build needs secret(s) that were not given: repo-cred" in refused.stderr
    built = nestcustom(
        "build", "recipes/private.yaml", "--tag", tag, "--secret", f"id=repo-cred,src={secret}",
        cwd=project,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert _Private.expected in seen  # the repo and the download were fetched with it
    tested = nestcustom("test", "recipes/private.yaml", "--image", tag, cwd=project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "nc-hello installed" in tested.stdout
    # The password is nowhere: not in the image's bytes (layers, config, history) ...
    needles = [PASSWORD.encode(), base64.b64encode(f"{USER}:{PASSWORD}".encode())]
    image = everything_in(tag, tmp_path)
    assert not [n for n in needles if n in image]
    history = podman("history", "--no-trunc", "--format", "json", tag).stdout
    inspect = podman("image", "inspect", tag).stdout
    assert PASSWORD not in history and PASSWORD not in inspect
    assert json.loads(inspect)[0]["Config"].get("Env", []) == json.loads(
        podman("image", "inspect", nestos_sp2_image).stdout
    )[0]["Config"].get("Env", [])
    # ... nor in what the build printed, nor in the rendered tree.
    assert PASSWORD not in built.stdout + built.stderr
    rendered_tree = "".join(
        p.read_text() for p in (project / "containerfiles").rglob("*") if p.is_file()
    )
    assert PASSWORD not in rendered_tree
    assert "secret: repo-cred" in (project / "recipes" / "private.yaml").read_text()


def test_a_wrong_password_fails_the_step_without_printing_it(
    project: Path,
    nestos_sp2_image: str,
    private_site: tuple[str, list[str]],
    tag: str,
    tmp_path: Path,
) -> None:
    site, _ = private_site
    write_private_recipe(project, nestos_sp2_image, site)
    git_commit(project)
    secret = tmp_path / "cred"
    secret.write_text(f"{USER}:wrong-Pa55word\n")
    built = nestcustom(
        "build", "recipes/private.yaml", "--tag", tag, "--secret", f"id=repo-cred,src={secret}",
        cwd=project,
    )  # fmt: skip
    assert built.returncode == 1
    assert "layer agent" in built.stderr
    assert "wrong-Pa55word" not in built.stdout + built.stderr
    assert subprocess.run(["podman", "image", "exists", tag]).returncode != 0
