"""Signing on push: keys made by `keys generate`, images pushed by digest, signed, stored in a
lookaside served over HTTP, and only then tagged; checked by the real containers/image
verification (skopeo with a signedBy policy); every bad input leaves no new tag."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from tests.image.refusing import refusing_artifacts, refusing_store
from tests.image.universe import nestcustom, podman, project, write_recipe
from tests.universe.httpserve import QuietHTTPServer
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe
__all__ = ["project"]

PASSPHRASE = "correct horse battery"


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """`directory` over HTTP on 127.0.0.1 (a lookaside web server, read-only)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two keys made by `nestcustom keys generate`: "site" (protected) and "other"."""
    root = tmp_path_factory.mktemp("keys")
    (root / "pass").write_text(PASSPHRASE + "\n")
    made = nestcustom(
        "keys",
        "generate",
        str(root / "site"),
        "--passphrase-file",
        str(root / "pass"),
        "--json",
        cwd=root,
    )
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    assert document["ok"] and document["key"]["protected"] is True
    assert (root / "site" / "signing-key.asc").stat().st_mode & 0o777 == 0o600
    other = nestcustom("keys", "generate", str(root / "other"), "--no-passphrase", cwd=root)
    assert other.returncode == 0, other.stderr
    return {
        "pass": root / "pass",
        "site": root / "site" / "signing-key.asc",
        "site.pub": root / "site" / "signing-key.pub.asc",
        "other": root / "other" / "signing-key.asc",
        "other.pub": root / "other" / "signing-key.pub.asc",
        "fingerprint": Path(document["key"]["fingerprint"]),
    }


def trust(tmp: Path, scope: str, public_key: Path, lookaside: str) -> tuple[Path, Path]:
    """A policy.json trusting `public_key` for `scope`, and a registries.d reading `lookaside`."""
    policy = tmp / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "default": [{"type": "reject"}],
                "transports": {
                    "docker": {
                        scope: [
                            {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(public_key)}
                        ]
                    },
                    "containers-storage": {"": [{"type": "insecureAcceptAnything"}]},
                },
            }
        )
    )
    registries_d = tmp / "registries.d"
    registries_d.mkdir(exist_ok=True)
    (registries_d / "test.yaml").write_text(f"docker:\n  {scope}:\n    sigstore: {lookaside}\n")
    return policy, registries_d


def verified_copy(
    reference: str, policy: Path, registries_d: Path
) -> subprocess.CompletedProcess[str]:
    """The real containers/image check: a copy under `policy` (the layers are local: cheap)."""
    return subprocess.run(
        [
            "skopeo",
            "--policy",
            str(policy),
            "--registries.d",
            str(registries_d),
            "copy",
            "--src-tls-verify=false",
            f"docker://{reference}",
            "containers-storage:localhost/nctest/verified:latest",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_signed_push_is_verified_by_containers_image_and_refused_with_another_key(
    project: Path,
    rpm_repo_url: str,
    nestos_sp2_image: str,
    registry: Registry,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    write_recipe(
        project, "signed", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    lookaside = tmp_path / "lookaside"
    lookaside.mkdir()
    reference = f"{registry.host}/signed/img:v1"
    try:
        result = nestcustom(
            "build",
            "recipes/signed.yaml",
            "--tag",
            reference,
            "--push",
            "--no-tls-verify",
            "--sign",
            str(keys["site"]),
            "--sign-passphrase-file",
            str(keys["pass"]),
            "--signature-store",
            f"file://{lookaside}",
            "--json",
            cwd=project,
        )
        assert result.returncode == 0, result.stderr
        image = json.loads(result.stdout)["images"][0]
        digest = image["pinned"].split("@", 1)[1]
        signature = lookaside / f"signed/img@sha256={digest.split(':')[1]}" / "signature-1"
        assert signature.is_file()
        assert registry.tags("signed/img") == ["v1"]
        with serve(lookaside) as url:
            policy, registries_d = trust(tmp_path, f"{registry.host}/signed", keys["site.pub"], url)
            accepted = verified_copy(reference, policy, registries_d)
            assert accepted.returncode == 0, accepted.stderr
            other = tmp_path / "other"
            other.mkdir()
            policy, registries_d = trust(other, f"{registry.host}/signed", keys["other.pub"], url)
            refused = verified_copy(reference, policy, registries_d)
            assert refused.returncode != 0
            assert "Source image rejected" in refused.stderr
            # An image pushed the plain way has no signature: refused too.
            unsigned = f"{registry.host}/signed/img:unsigned"
            podman("tag", reference, unsigned)
            assert (
                podman(
                    "push", "-q", "--remove-signatures", "--tls-verify=false", unsigned
                ).returncode
                == 0
            )
            policy, registries_d = trust(tmp_path, f"{registry.host}/signed", keys["site.pub"], url)
            refused = verified_copy(unsigned, policy, registries_d)
            assert refused.returncode != 0 and "Source image rejected" in refused.stderr
    finally:
        podman("rmi", "-f", reference, f"{registry.host}/signed/img:unsigned")
        podman("rmi", "-f", "localhost/nctest/verified:latest")


@pytest.mark.parametrize("case", ["wrong-passphrase", "missing-key", "public-key", "cosign-key"])
def test_a_key_that_cannot_sign_stops_the_build_before_anything_is_built(
    case: str,
    project: Path,
    rpm_repo_url: str,
    nestos_sp2_image: str,
    registry: Registry,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    write_recipe(
        project, "bad", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    cosign = tmp_path / "cosign.key"
    cosign.write_text(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    key, passphrase, expected = {
        "wrong-passphrase": (keys["site"], wrong, "wrong passphrase"),
        "missing-key": (tmp_path / "nope.asc", keys["pass"], "does not exist"),
        "public-key": (
            keys["site.pub"],
            keys["pass"],
            "this is a GPG public key, not a GPG secret key",
        ),
        "cosign-key": (cosign, keys["pass"], "this is a sigstore (cosign) private key"),
    }[case]
    reference = f"{registry.host}/bad/{case}:v1"
    result = nestcustom(
        "build",
        "recipes/bad.yaml",
        "--tag",
        reference,
        "--push",
        "--no-tls-verify",
        "--sign",
        str(key),
        "--sign-passphrase-file",
        str(passphrase),
        "--signature-store",
        f"file://{tmp_path}/sigs",
        "--json",
        cwd=project,
    )
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["kind"] == "bad-input"
    assert expected in document["error"]["message"]
    assert "Traceback" not in result.stderr
    assert registry.tags(f"bad/{case}") == []
    assert podman("image", "exists", reference).returncode != 0


def test_a_store_that_refuses_the_signature_leaves_no_tag(
    project: Path,
    rpm_repo_url: str,
    nestos_sp2_image: str,
    registry: Registry,
    keys: dict[str, Path],
) -> None:
    write_recipe(
        project, "refused", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    reference = f"{registry.host}/refused/img:v1"
    with refusing_store() as store:
        result = nestcustom(
            "build",
            "recipes/refused.yaml",
            "--tag",
            reference,
            "--push",
            "--no-tls-verify",
            "--sign",
            str(keys["site"]),
            "--sign-passphrase-file",
            str(keys["pass"]),
            "--signature-store",
            store,
            "--json",
            cwd=project,
        )
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    message = document["images"][0]["error"]["message"]
    assert "the signature store refused the upload" in message and "403" in message
    assert registry.tags("refused/img") == []  # pushed by digest only: no tag
    assert podman("image", "exists", reference).returncode != 0  # nor a local one


def test_sbom_is_pushed_next_to_the_image_and_signed_like_it(
    project: Path,
    rpm_repo_url: str,
    nestos_sp2_image: str,
    registry: Registry,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    write_recipe(
        project, "withsbom", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    lookaside = tmp_path / "lookaside"
    reference = f"{registry.host}/sbom/img:v1"
    fingerprint = str(keys["fingerprint"])
    try:
        result = nestcustom(
            "build",
            "recipes/withsbom.yaml",
            "--tag",
            reference,
            "--push",
            "--no-tls-verify",
            "--sign",
            str(keys["site"]),
            "--sign-passphrase-file",
            str(keys["pass"]),
            "--signature-store",
            f"file://{lookaside}",
            "--sbom",
            "--json",
            cwd=project,
        )
        assert result.returncode == 0, result.stderr
        digest = json.loads(result.stdout)["images"][0]["digest"]
        sbom_tag = digest.replace(":", "-") + ".sbom"
        assert sorted(registry.tags("sbom/img")) == sorted(["v1", sbom_tag])
        raw = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"docker://{registry.host}/sbom/img:{sbom_tag}",
            ],
            capture_output=True,
            check=True,
        ).stdout
        manifest = json.loads(raw)
        assert manifest["artifactType"] == "application/spdx+json"
        assert manifest["subject"]["digest"] == digest  # it names the image it describes
        layer = manifest["layers"][0]
        blob = subprocess.run(
            ["curl", "-fsS", f"http://{registry.host}/v2/sbom/img/blobs/{layer['digest']}"],
            capture_output=True,
            check=True,
        ).stdout
        spdx = json.loads(blob)
        assert {p["name"] for p in spdx["packages"]} >= {"nc-hello", "nc-libgreet"}
        assert spdx["packages"][0]["name"] == f"{registry.host}/sbom/img@{digest}"
        # Its signature, checked offline by skopeo with the site's public key only.
        sbom_digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        signature = lookaside / f"sbom/img@sha256={sbom_digest.split(':')[1]}" / "signature-1"
        (tmp_path / "m.json").write_bytes(raw)
        home = tmp_path / "gnupg"
        home.mkdir(mode=0o700)
        env = {**os.environ, "GNUPGHOME": str(home)}
        subprocess.run(
            ["gpg", "--batch", "--import", str(keys["site.pub"])],
            env=env,
            check=True,
            capture_output=True,
        )
        verified = subprocess.run(
            [
                "skopeo",
                "standalone-verify",
                str(tmp_path / "m.json"),
                f"{registry.host}/sbom/img:{sbom_tag}",
                fingerprint,
                str(signature),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], env=env, check=False
        )
        assert verified.returncode == 0, verified.stderr
        assert f"Signature verified, digest {sbom_digest}" in verified.stdout
    finally:
        podman("rmi", "-f", reference)


def test_a_registry_that_refuses_the_sbom_leaves_no_tag(
    project: Path,
    rpm_repo_url: str,
    nestos_sp2_image: str,
    registry: Registry,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    write_recipe(
        project, "nosbom", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    with refusing_artifacts(registry.host) as front:
        reference = f"{front}/nosbom/img:v1"
        try:
            result = nestcustom(
                "build",
                "recipes/nosbom.yaml",
                "--tag",
                reference,
                "--push",
                "--no-tls-verify",
                "--sign",
                str(keys["site"]),
                "--sign-passphrase-file",
                str(keys["pass"]),
                "--signature-store",
                f"file://{tmp_path}/sigs",
                "--sbom",
                "--json",
                cwd=project,
            )
            assert result.returncode == 1, result.stderr
            assert "Traceback" not in result.stderr
            message = json.loads(result.stdout)["images"][0]["error"]["message"]
            assert "the registry refused the manifest for" in message and "(403)" in message
            assert "artifacts are not accepted" in message
            # The image is in the registry by digest, signed, but under no tag; no SBOM tag.
            assert registry.tags("nosbom/img") == []
            assert podman("image", "exists", reference).returncode != 0
        finally:
            podman("rmi", "-f", reference)
