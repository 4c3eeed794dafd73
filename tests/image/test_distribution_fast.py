"""The registry client (image/distribution.py) against a real Distribution registry on
127.0.0.1, started in about a second: blobs, manifests and tags as the signed push and
the SBOM use them, the plain-HTTP fallback, and logins. No podman."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image.distribution import Repository, split_name
from tests.universe.registry import Registry, run_registry

OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("locked"), login=("nc", "s3cret")) as running:
        yield running


def manifest_for(repo: Repository, config: bytes) -> bytes:
    digest = repo.put_blob(config)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()


def served_digest(registry: Registry, path: str, reference: str) -> str:
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{path}/manifests/{reference}", headers={"Accept": OCI}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(answer.headers["Docker-Content-Digest"])


def test_blobs_are_uploaded_once_and_read_back_as_a_stream(registry: Registry) -> None:
    repo = Repository(f"{registry.host}/nc/blobs", tls_verify=False)
    data = b"an SBOM, say"
    digest = repo.put_blob(data)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert repo.has_blob(digest)
    assert repo.put_blob(data) == digest  # there already: nothing uploaded again
    with repo.open_blob(digest) as stream:
        assert stream.read() == data
    assert not repo.has_blob("sha256:" + "0" * 64)
    with (
        pytest.raises(NestcustomError, match=r"answered 404 for blob sha256:0000"),
        repo.open_blob("sha256:" + "0" * 64),
    ):
        pass


def test_a_manifest_is_put_read_and_tagged_by_digest(registry: Registry) -> None:
    repo = Repository(f"{registry.host}/nc/manifests", tls_verify=False)
    body = manifest_for(repo, b'{"architecture": "amd64", "os": "linux"}')
    digest = repo.put_manifest("v1", body, OCI)
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert repo.manifest(digest) == (body, OCI)
    repo.tag(digest, "ring-canary")  # a manifest-only copy: the same bytes, the same digest
    assert served_digest(registry, "nc/manifests", "ring-canary") == digest
    with pytest.raises(NestcustomError) as missing:
        repo.manifest("nope")
    assert missing.value.message == f"{registry.host}/nc/manifests:nope: the registry answered 404"


def test_a_manifest_the_registry_refuses_says_the_registrys_reason(registry: Registry) -> None:
    repo = Repository(f"{registry.host}/nc/refused", tls_verify=False)
    with pytest.raises(NestcustomError) as refused:
        repo.put_manifest("v1", b'{"schemaVersion": 2, "mediaType": "x"}', OCI)
    assert refused.value.message.startswith(
        f"the registry refused the manifest for {registry.host}/nc/refused:v1 (400): "
    )
    assert "MANIFEST_INVALID" in refused.value.message
    assert refused.value.hint == (
        "check the login (podman login) and that the registry accepts this manifest type"
    )


def test_tls_is_verified_unless_turned_off(registry: Registry) -> None:
    with pytest.raises(NestcustomError) as plain:
        Repository(f"{registry.host}/nc/tls").has_blob("sha256:" + "0" * 64)
    assert plain.value.message.startswith(f"cannot reach the registry {registry.host}: ")
    assert plain.value.hint == "with a registry without TLS, pass --no-tls-verify"


def test_a_registry_asking_for_a_login_gets_the_users_credentials(
    locked: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = tmp_path / "auth.json"
    token = base64.b64encode(b"nc:s3cret").decode()
    auth.write_text(json.dumps({"auths": {locked.host: {"auth": token}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    repo = Repository(f"{locked.host}/nc/private", tls_verify=False)
    digest = repo.put_blob(b"private")
    with repo.open_blob(digest) as stream:  # the login is sent with the stream too
        assert stream.read() == b"private"


def test_without_credentials_a_locked_registry_refuses_clearly(
    locked: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text('{"auths": {}}')
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    repo = Repository(f"{locked.host}/nc/private", tls_verify=False)
    assert not repo.has_blob("sha256:" + "1" * 64)
    with pytest.raises(NestcustomError) as refused:
        repo.put_blob(b"x")
    assert refused.value.message.startswith(
        f"the registry refused an upload to {locked.host}/nc/private (401): UNAUTHORIZED"
    )


def test_names_split_into_registry_and_path() -> None:
    assert split_name("r.example.com:5000/a/b:tag@sha256:ab") == ("r.example.com:5000", "a/b")
    assert split_name("r.example.com/a/b:tag") == ("r.example.com", "a/b")
    assert split_name("r.example.com:5000/a/b") == ("r.example.com:5000", "a/b")
    with pytest.raises(NestcustomError, match="no registry in the reference"):
        split_name("alone")
