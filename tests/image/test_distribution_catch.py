"""The registry client against registries a user meets: one whose TLS certificate this
machine does not trust (refused, with the way out), and a token service that answers
with an OAuth2 `access_token` instead of `token` (accepted: the Bearer flow works)."""

from __future__ import annotations

import datetime
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nestcustom.errors import NestcustomError
from nestcustom.image.distribution import Repository
from tests.gitops import test_registry_token_fast as tokens
from tests.gitops.test_registry_token_fast import TokenRegistry, token_registry, use_auth
from tests.universe.httpserve import QuietHTTPServer

__all__ = ["token_registry"]  # the fixture, shared with the token tests


class _NotFound(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a certificate nobody signed; its host:port."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = QuietHTTPServer(("127.0.0.1", 0), _NotFound)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_untrusted_certificate_is_refused_with_the_way_out(self_signed: str) -> None:
    blob = "sha256:" + "0" * 64
    with pytest.raises(NestcustomError) as caught:
        Repository(f"{self_signed}/nc/img").has_blob(blob)
    assert caught.value.message.startswith(f"cannot reach the registry {self_signed}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
    assert caught.value.hint == "with a registry without TLS, pass --no-tls-verify"
    assert Repository(f"{self_signed}/nc/img", tls_verify=False).has_blob(blob) is False


def test_a_token_service_answering_with_an_access_token_is_understood(
    token_registry: TokenRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = token_registry.service

    def answer_access_token(handler: tokens._Handler) -> None:  # OAuth2's field name
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query))
        body = json.dumps({"access_token": service.token(query.get("scope", ""))}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    monkeypatch.setattr(tokens._Handler, "do_GET", answer_access_token)
    use_auth(monkeypatch, tmp_path, token_registry.host, tokens.PASSWORD)
    repo = Repository(f"{token_registry.host}/nc/oauth", tls_verify=False)
    digest = repo.put_blob(b"behind an access token\n")
    with repo.open_blob(digest) as stream:
        assert stream.read() == b"behind an access token\n"
