"""The pure parts of the supply chain: the push proxy (a tag PUT becomes a digest PUT, all else
passes through), the signature store's layout, key kinds, and advisories' exposure rule."""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.gitops.advisories import exposures, parse_updateinfo
from nestcustom.image.lookaside import SignatureStore, configured, staging_url
from nestcustom.image.pushproxy import push_proxy, stable_ports
from nestcustom.image.rpmdb import Package
from nestcustom.keyformat import key_kind
from tests.universe.httpserve import QuietHTTPServer

Seen = list[tuple[str, str, bytes, dict[str, str]]]


@pytest.fixture
def upstream() -> Iterator[tuple[str, Seen]]:
    """A registry stand-in recording what reaches it."""
    seen: Seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Transfer-Encoding") == "chunked":
                while size := int(self.rfile.readline().strip() or b"0", 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            seen.append((self.command, self.path, body, dict(self.headers.items())))
            self.send_response(202 if self.command == "POST" else 201)
            if self.command == "POST":
                host = self.headers["Host"]
                self.send_header("Location", f"http://{host}/v2/ns/img/blobs/uploads/u1?_state=x")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_POST = do_PATCH = do_HEAD = _any

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_proxy_stores_a_tagged_manifest_by_digest_and_passes_the_rest(
    upstream: tuple[str, Seen],
) -> None:
    address, seen = upstream
    manifest = b'{"schemaVersion":2}'
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    with push_proxy(address, tls_verify=False) as proxy:
        client = http.client.HTTPConnection(proxy.address)
        client.request("POST", "/v2/ns/img/blobs/uploads/")
        answer = client.getresponse()
        answer.read()
        # Location pointing at the registry is made relative: the client comes back here.
        assert answer.getheader("Location") == "/v2/ns/img/blobs/uploads/u1?_state=x"
        client.request(
            "PATCH", "/v2/ns/img/blobs/uploads/u1", body=iter([b"ab", b"cd"]), encode_chunked=True
        )
        client.getresponse().read()
        client.request(
            "PUT",
            "/v2/ns/img/manifests/v1",
            body=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert client.getresponse().status == 201
        pushed = proxy.pushed("ns/img", "v1")
    assert (pushed.digest, pushed.manifest) == (digest, manifest)
    paths = [(method, path) for method, path, _, _ in seen]
    assert ("PUT", f"/v2/ns/img/manifests/{digest}") in paths
    assert not any(p.endswith("/manifests/v1") for _, p in paths)  # never the tag
    assert [body for method, _, body, _ in seen if method == "PATCH"] == [b"abcd"]


def test_the_proxy_port_is_the_same_for_a_registry_every_run() -> None:
    assert stable_ports("r.example.com:5000") == stable_ports("r.example.com:5000")
    assert stable_ports("r.example.com:5000")[0] != stable_ports("other.example.com")[0]


def test_signatures_are_stored_where_containers_image_looks(tmp_path: Path) -> None:
    store = SignatureStore(f"file://{tmp_path}")
    digest = "sha256:" + "a" * 64
    first = store.store("ns/img", digest, b"one")
    assert first == f"file://{tmp_path}/ns/img@sha256={'a' * 64}/signature-1"
    assert store.store("ns/img", digest, b"one") == first  # the same signature once
    assert store.store("ns/img", digest, b"two").endswith("/signature-2")
    assert store.existing("ns/img", digest) == [b"one", b"two"]


def test_the_signature_store_comes_from_registries_d_or_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    directory = tmp_path / ".config/containers/registries.d"
    directory.mkdir(parents=True)
    (directory / "site.yaml").write_text(
        "docker:\n  reg.example.com/site:\n    lookaside: https://s.example/\n"
        "    lookaside-staging: file:///srv/sigs\n"
    )
    assert configured("reg.example.com/site/web")["lookaside"] == "https://s.example/"
    assert staging_url("reg.example.com/site/web", None) == "file:///srv/sigs"
    assert staging_url("reg.example.com/site/web", "https://dav.example/sigs/") == (
        "https://dav.example/sigs"
    )
    with pytest.raises(BadInputError, match=r"no place to store signatures of other\.example/x"):
        staging_url("other.example/x", None)
    with pytest.raises(BadInputError, match="neither a file://"):
        staging_url("reg.example.com/site/web", "ftp://x/")


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", "gpg-public"),
        (b"\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "gpg-secret"),
        (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "sigstore"),
        (b"-----BEGIN PUBLIC KEY-----\n", "sigstore-public"),
        (bytes([0x99, 0x01, 0x0D]), "gpg-public"),  # old-format packet, tag 6
        (bytes([0xC5, 0x01]), "gpg-secret"),  # new-format packet, tag 5
        (b"hello", "unknown"),
    ],
)
def test_key_kinds(head: bytes, kind: str) -> None:
    assert key_kind(head) == kind


UPDATEINFO = b"""<updates>
<update type="security"><id>SA-1</id><severity>Important</severity><title>t</title>
<references><reference type="cve" id="CVE-1"/></references>
<pkglist><collection>
<package name="a" version="1.10" release="1" epoch="0" arch="x86_64"/>
<package name="n" version="2" release="1" epoch="1" arch="noarch"/>
</collection></pkglist></update>
<update type="bugfix"><id>BA-2</id><severity>Low</severity>
<pkglist><collection><package name="a" version="9" release="1" arch="x86_64"/></collection></pkglist>
</update></updates>"""


def test_exposures_follow_rpm_version_order_arch_and_type() -> None:
    advisories = parse_updateinfo(UPDATEINFO, "http://repo/")
    assert [a.id for a in advisories] == ["SA-1"]  # bug fixes are not security advisories
    packages = [
        Package("a", "x86_64", 0, "1.9", "5"),  # 1.9 < 1.10 as rpm compares: exposed
        Package("a", "aarch64", 0, "1.0", "1"),  # another arch: not this advisory's
        Package("n", "noarch", 0, "9", "1"),  # epoch 0 < 1: exposed
    ]
    found = exposures(packages, advisories)
    assert [(e.package.name, e.package.arch, e.fixed.evr) for e in found] == [
        ("a", "x86_64", "1.10-1"),
        ("n", "noarch", "1:2-1"),
    ]
    fixed = [Package("a", "x86_64", 0, "1.10", "1"), Package("n", "noarch", 1, "2", "1")]
    assert exposures(fixed, advisories) == []
