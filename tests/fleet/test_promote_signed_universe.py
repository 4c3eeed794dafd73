"""`nestcustom promote` checks signatures where the image carries a policy (issue 24, item 1):
images built from a recipe with `signing:` (its policy.json, key and registries.d inside, the
io.nestcustom.signing label), signed by `build --push --sign` into a lookaside served over
HTTP, promoted on the universe registry. A signed digest moves the ring; an unsigned one,
another key's, one signed for another repository and one whose lookaside does not answer
are refused with the ring and the journal as they were; --unsigned lets an unsigned one
through, loudly; an image without a policy is promoted as before and says so."""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from tests.deploy.conftest import nestcustom, podman
from tests.fleet.test_promote_universe import push_image, serving
from tests.universe.httpserve import QuietHTTPServer
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe

NO_POLICY = "unsigned: the image carries no signing policy for its repository"


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """`directory` over HTTP on 127.0.0.1: the lookaside web server, read-only."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Images:
    repo: str  # REG/promote/nestos: every image below but `copy` and `dark`
    pinned: dict[str, str]  # name -> REPO@DIGEST
    fingerprints: dict[str, str]  # key name -> fingerprint
    lookaside: Path


def build(project: Path, recipe: str, tag: str, *sign: str) -> str:
    done = nestcustom(project, "build", f"recipes/{recipe}.yaml", "--tag", tag, "--push",
                      "--no-tls-verify", *sign, "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["images"][0]["pinned"])


@pytest.fixture(scope="module")
def images(
    registry: Registry, nestos_sp2_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Images]:
    root = tmp_path_factory.mktemp("promote-signed")
    fingerprints = {}
    for name in ("site", "other"):
        made = nestcustom(root, "keys", "generate", str(root / name), "--no-passphrase", "--json")
        assert made.returncode == 0, made.stderr
        fingerprints[name] = json.loads(made.stdout)["key"]["fingerprint"]
    lookaside = root / "lookaside"
    lookaside.mkdir()
    repo = f"{registry.host}/promote/nestos"
    project = root / "project"
    (project / "recipes").mkdir(parents=True)
    (project / "files").mkdir()
    shutil.copy(root / "site" / "signing-key.pub.asc", project / "files" / "site.pub.asc")
    store = ("--signature-store", f"file://{lookaside}")
    with serve(lookaside) as url:
        for name in ("v1", "unsigned", "other", "dark"):
            # dark's lookaside (127.0.0.1:1) does not answer; it is signed into the store all the same
            reads = "http://127.0.0.1:1/" if name == "dark" else url
            (project / "files" / name).write_text(f"{name}\n")
            (project / "recipes" / f"{name}.yaml").write_text(
                f"name: {name}\nbase: {{image: '{nestos_sp2_image}'}}\n"
                f"files: [{{src: files/{name}, dest: /usr/share/nc-version}}]\n"
                f"signing:\n  scopes:\n"
                f"    - {{scope: {registry.host}/promote, key: files/site.pub.asc, lookaside: '{reads}'}}\n"
            )  # fmt: skip
        site = ("--sign", str(root / "site" / "signing-key.asc"), *store)
        other = ("--sign", str(root / "other" / "signing-key.asc"), *store)
        pinned = {
            "v1": build(project, "v1", f"{repo}:v1", *site),
            "unsigned": build(project, "unsigned", f"{repo}:unsigned"),
            "other": build(project, "other", f"{repo}:other", *other),
            "dark": build(project, "dark", f"{registry.host}/promote/dark:v1", *site),
        }
        assert len(set(pinned.values())) == len(pinned), pinned
        # v1's manifest in another repository of the scope, with v1's signature (whose
        # identity is promote/nestos) stored for it: signed, but for another repository.
        copy = f"{registry.host}/promote/copy"
        subprocess.run(
            ["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false",
             "--dest-tls-verify=false", f"docker://{pinned['v1']}", f"docker://{copy}:v1"],
            check=True, capture_output=True,
        )  # fmt: skip
        digest = pinned["v1"].split("@")[1]
        shutil.copytree(
            lookaside / f"promote/nestos@sha256={digest.split(':')[1]}",
            lookaside / f"promote/copy@sha256={digest.split(':')[1]}",
        )
        pinned["copy"] = f"{copy}@{digest}"
        yield Images(repo, pinned, fingerprints, lookaside)
    for tag in ("v1", "unsigned", "other"):
        podman("rmi", "-f", f"{repo}:{tag}")
    podman("rmi", "-f", f"{registry.host}/promote/dark:v1")


def promote(
    cwd: Path, pinned: str, *options: str, ring: str = "canary"
) -> subprocess.CompletedProcess[str]:
    return nestcustom(cwd, "promote", "--no-tls-verify", "--ring", ring, pinned, *options)


def test_a_signed_digest_moves_the_ring(images: Images, tmp_path: Path) -> None:
    done = promote(tmp_path, images.pinned["v1"], "--json")
    assert done.returncode == 0, done.stdout
    signature = json.loads(done.stdout)["signature"]
    digest = images.pinned["v1"].split("@")[1]
    assert signature["verified"] is True
    assert signature["fingerprint"] == images.fingerprints["site"]
    assert signature["note"].startswith(
        f"verified: signature-1 by {images.fingerprints['site'][-16:]} for {images.repo}:v1"
    )
    assert signature["url"].endswith(f"/promote/nestos@sha256={digest[7:]}/signature-1")
    assert serving(f"{images.repo}:ring-canary") == digest


def refused(
    images: Images, tmp_path: Path, name: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """Promote `name` to the ring of its repository after v1 (signed) went there: the ring
    and the journal must be as they were."""
    repo = images.pinned[name].split("@")[0]
    journal = tmp_path / "promotions.jsonl"
    before = serving(f"{repo}:ring-canary")
    rows = journal.read_text() if journal.exists() else ""
    done = promote(tmp_path, images.pinned[name], *options)
    assert serving(f"{repo}:ring-canary") == before
    assert (journal.read_text() if journal.exists() else "") == rows
    assert "Traceback" not in done.stderr
    return done


def test_an_unsigned_digest_of_an_image_with_a_policy_is_refused(
    images: Images, tmp_path: Path
) -> None:
    assert promote(tmp_path, images.pinned["v1"]).returncode == 0
    done = refused(images, tmp_path, "unsigned", "--json")
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    digest = images.pinned["unsigned"].split("@")[1]
    assert error["message"].startswith(
        f"{images.pinned['unsigned']} is not signed: no signature at http://127.0.0.1:"
    )
    assert error["message"].endswith(f"/promote/nestos@sha256={digest[7:]}/signature-1")
    assert "--unsigned" in error["hint"] and "nothing was moved" in error["hint"]
    assert serving(f"{images.repo}:ring-canary") == images.pinned["v1"].split("@")[1]


def test_another_keys_signature_is_refused(images: Images, tmp_path: Path) -> None:
    assert promote(tmp_path, images.pinned["v1"]).returncode == 0
    done = refused(images, tmp_path, "other")
    assert done.returncode == 2
    site = images.fingerprints["site"][-16:]
    assert (
        f"{images.pinned['other']} is not signed by a key the image trusts for {images.repo} "
        f"({site}): 1 signature(s) at http://127.0.0.1:"
    ) in done.stderr
    assert "none verifies" in done.stderr


def test_a_signature_for_another_repository_is_refused(images: Images, tmp_path: Path) -> None:
    done = refused(images, tmp_path, "copy")
    assert done.returncode == 2
    assert f"signature-1 is signed for {images.repo}:v1, another repository" in done.stderr


def test_a_lookaside_that_does_not_answer_is_a_failure(images: Images, tmp_path: Path) -> None:
    done = refused(images, tmp_path, "dark")
    assert done.returncode == 1
    assert f"cannot read the signatures of {images.pinned['dark']}" in done.stderr
    assert "cannot reach the signature store http://127.0.0.1:1/promote/dark@" in done.stderr


def test_unsigned_lets_an_unsigned_digest_through_loudly(images: Images, tmp_path: Path) -> None:
    assert promote(tmp_path, images.pinned["v1"]).returncode == 0  # from a signed digest
    done = promote(tmp_path, images.pinned["unsigned"], "--unsigned")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(
        "warning: --unsigned: the signature is NOT checked, although the image's signing "
        f"policy covers its repository (gpg:{images.repo.rsplit('/', 1)[0]})\n"
    )
    assert "signature: NOT verified (--unsigned)" in done.stderr
    assert serving(f"{images.repo}:ring-canary") == images.pinned["unsigned"].split("@")[1]
    row = json.loads((tmp_path / "promotions.jsonl").read_text().splitlines()[-1])
    assert row["after"] == images.pinned["unsigned"].split("@")[1]

    # --undo is checked as a promotion: back to the unsigned digest only with --unsigned.
    assert promote(tmp_path, images.pinned["v1"]).returncode == 0
    journal = (tmp_path / "promotions.jsonl").read_text()
    back = promote(tmp_path, images.repo, "--undo")
    assert back.returncode == 2
    assert f"{images.pinned['unsigned']} is not signed: no signature at" in back.stderr
    assert serving(f"{images.repo}:ring-canary") == images.pinned["v1"].split("@")[1]
    assert (tmp_path / "promotions.jsonl").read_text() == journal
    back = promote(tmp_path, images.repo, "--undo", "--unsigned")
    assert back.returncode == 0, back.stderr
    assert serving(f"{images.repo}:ring-canary") == images.pinned["unsigned"].split("@")[1]


def test_an_image_without_a_policy_is_promoted_and_says_so(
    registry: Registry, tmp_path: Path
) -> None:
    digest = push_image(registry, tmp_path, "nopolicy")
    image = f"{registry.host}/custom/agent"
    done = promote(tmp_path, f"{image}@{digest}", "--json", ring="nopolicy")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["signature"] == {
        "verified": False,
        "note": NO_POLICY,
        "fingerprint": None,
        "url": None,
    }
    assert serving(f"{image}:ring-nopolicy") == digest
