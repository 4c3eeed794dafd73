"""Reading a blob from a registry that hands out tokens (the Bearer flow of Docker Hub,
Quay, Harbor, GitLab), fast: Debian's docker-registry with `auth: token`, and a token
service here that checks the user's password and signs JWTs (ES256, x5c) with a key the
registry trusts, so the registry itself verifies every token."""

from __future__ import annotations

import base64
import datetime
import functools
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from nestcustom.errors import NestcustomError
from nestcustom.gitops.blobs import BlobReader
from nestcustom.image.distribution import Repository
from tests.universe.httpserve import QuietHTTPServer
from tests.universe.registry import free_port

USER, PASSWORD = "gitops", "not-a-real-secret"
SERVICE, ISSUER = "nctest-registry", "nctest-tokens"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    asked: list[tuple[dict[str, str], str]] = field(default_factory=list)  # (query, auth)
    answer_as: str = "token"  # the JSON key of the answer (OAuth2 services: access_token)

    def token(self, scope: str) -> str:
        now = int(time.time())
        access = []
        for part in filter(None, scope.split(" ")):
            kind, name, actions = part.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}  # fmt: skip
        claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": str(now), "access": access}  # fmt: skip
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, *args: Any, service: TokenService, **kwargs: Any) -> None:
        self.service = service
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        auth = self.headers.get("Authorization", "")
        self.service.asked.append((query, auth))
        good = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if auth != good or query.get("service") != SERVICE:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps(
            {self.service.answer_as: self.service.token(query.get("scope", ""))}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class TokenRegistry:
    host: str
    service: TokenService


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    work = tmp_path_factory.mktemp("token-registry")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (work / "tokens.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    service = TokenService(key, cert)
    server = QuietHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, service=service))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    (work / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {work / 'storage'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
        f"auth: {{token: {{realm: 'http://127.0.0.1:{server.server_address[1]}/token', "
        f"service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: {work / 'tokens.pem'}}}}}\n"
    )
    log = (work / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(work / "config.yml")],
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((work / "registry.log").read_text()[-500:]) from None
                time.sleep(0.1)
        yield TokenRegistry(f"127.0.0.1:{port}", service)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        server.shutdown()
        server.server_close()


def use_auth(monkeypatch: pytest.MonkeyPatch, tmp: Path, host: str, password: str) -> None:
    path = tmp / f"auth-{password}.json"
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))


def test_a_blob_behind_a_token_service(
    token_registry: TokenRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{token_registry.host}/gitops/token"
    use_auth(monkeypatch, tmp_path, token_registry.host, PASSWORD)
    data = b"a blob behind a token\n" * 40
    digest = Repository(name, tls_verify=False).put_blob(data)
    token_registry.service.asked.clear()
    reader = BlobReader(f"{name}:1", tls_verify=False)
    with reader.open(digest) as stream:
        assert stream.read() == data
    assert reader.downloaded == len(data)
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    # the scope the registry's challenge named, the service, and the user's password
    assert token_registry.service.asked == [
        ({"service": SERVICE, "scope": "repository:gitops/token:pull"}, basic)
    ]
    assert (reader._auth or "").startswith("Bearer ey")
    with reader.open(digest) as stream:  # the token is kept: no second request for one
        assert stream.read() == data
    assert len(token_registry.service.asked) == 1


def test_a_token_service_that_refuses_the_password(
    token_registry: TokenRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_auth(monkeypatch, tmp_path, token_registry.host, "wrong")
    reader = BlobReader(f"{token_registry.host}/gitops/token:1", tls_verify=False)
    with pytest.raises(NestcustomError) as raised, reader.open("sha256:" + "0" * 64):
        pass
    assert raised.value.message == (
        f"{token_registry.host}/gitops/token:1: cannot get a registry token: "
        "HTTP Error 401: Unauthorized"
    )
