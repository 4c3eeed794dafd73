"""Reading an image's manifest and single layer blobs from its registry, streamed.

skopeo reads manifests but has no way to fetch one layer; a package diff
needs only the layers that hold the RPM database, so blobs come over the
registry's HTTP API (GET /v2/NAME/blobs/DIGEST) here, with the same
credentials podman and skopeo use, the token flow registries ask for, and
TLS verified unless the user turned it off (then plain HTTP is tried when
the registry does not speak TLS, as skopeo does). Credentials never follow
a redirect to another host (blob storage behind a CDN gets a signed URL).
"""

from __future__ import annotations

import base64
import json
import platform
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, cast

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.gitops.imagefacts import skopeo_argv
from nestcustom.image.auth import credentials_for

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int  # compressed, as the manifest states it
    media_type: str


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port] as the API is reached
    repository: str
    reference: str  # tag or digest

    @classmethod
    def parse(cls, text: str) -> Reference:
        name, at, digest = text.partition("@")
        tag = ""
        if not at and ":" in name.rsplit("/", 1)[-1]:
            name, _, tag = name.rpartition(":")
        first, _, rest = name.partition("/")
        if not rest or not ("." in first or ":" in first or first == "localhost"):
            first, rest = "docker.io", name if "/" in name else f"library/{name}"
        host = "registry-1.docker.io" if first == "docker.io" else first
        return cls(host, rest, digest if at else (tag or "latest"))


def manifest_layers(reference: str, tls_verify: bool, arch: str | None = None) -> list[Layer]:
    """The layers of `reference`, bottom first; an index is resolved for `arch` (default: this
    machine's architecture, else the index's first image)."""
    document = _raw_manifest(reference, tls_verify)
    if document.get("mediaType") in INDEX_TYPES or "manifests" in document:
        machine = arch or platform.machine()
        wanted = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
        entries = document.get("manifests") or []
        chosen = next(
            (m for m in entries if (m.get("platform") or {}).get("architecture") == wanted),
            None if arch else next(iter(entries), None),
        )
        if chosen is None:
            raise NestcustomError(f"{reference}: no image for {arch} in its index")
        document = _raw_manifest(f"{repository_of(reference)}@{chosen['digest']}", tls_verify)
    return [
        Layer(str(item["digest"]), int(item.get("size") or 0), str(item.get("mediaType", "")))
        for item in document.get("layers") or []
    ]


def repository_of(reference: str) -> str:
    """`reference` without its tag or digest."""
    name = reference.partition("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rpartition(":")[0]
    return name


def _raw_manifest(reference: str, tls_verify: bool) -> dict[str, Any]:
    done = proc.run(
        skopeo_argv(reference, tls_verify, "inspect", "--raw"), check=False, timeout=120
    )
    if done.returncode != 0:
        raise NestcustomError(
            f"cannot read the manifest of {reference}: {done.stderr.strip()[-300:]}",
            "check the name, the login (auth.json) and --tls-verify",
        )
    document: dict[str, Any] = json.loads(done.raw_stdout)
    return document


class _NoAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, dropping the Authorization header when the host changes."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.headers.pop("Authorization", None)
            new.unredirected_hdrs.pop("Authorization", None)
        return new


@dataclass
class BlobReader:
    """Fetches blobs of one repository, counting the bytes that came over the network."""

    reference: str
    tls_verify: bool = True
    downloaded: int = 0
    _auth: str | None = None
    _scheme: str = "https"
    _opener: urllib.request.OpenerDirector = field(init=False)

    def __post_init__(self) -> None:
        self.ref = Reference.parse(self.reference)
        context = ssl.create_default_context()
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(
            _NoAuthOnRedirect(), urllib.request.HTTPSHandler(context=context)
        )

    @contextmanager
    def open(self, digest: str) -> Iterator[IO[bytes]]:
        """A stream of the blob's bytes (as stored: compressed), counted as it is read."""
        response = self._get(f"/v2/{self.ref.repository}/blobs/{digest}")
        try:
            yield cast(IO[bytes], _Counting(response, self))
        finally:
            response.close()

    def _get(self, path: str) -> IO[bytes]:
        for attempt in range(3):
            url = f"{self._scheme}://{self.ref.registry}{path}"
            request = urllib.request.Request(url)  # noqa: S310 - http(s) only, built here
            if self._auth:
                request.add_unredirected_header("Authorization", self._auth)
            try:
                response: IO[bytes] = self._opener.open(request, timeout=120)
                return response
            except urllib.error.HTTPError as exc:
                if (
                    exc.code == 401
                    and attempt < 2
                    and self._login(exc.headers.get("WWW-Authenticate", ""))
                ):
                    continue
                raise NestcustomError(
                    f"{self.reference}: the registry answered {exc.code} {exc.reason} for {path}",
                    "check the login (podman login) and the image name",
                ) from exc
            except urllib.error.URLError as exc:
                if self._scheme == "https" and not self.tls_verify and _is_plain_http(exc):
                    self._scheme = "http"  # a registry without TLS, as skopeo allows then
                    continue
                raise NestcustomError(
                    f"{self.reference}: cannot reach {self.ref.registry}: {exc.reason}",
                    "with a registry without TLS, pass --no-tls-verify"
                    if _is_plain_http(exc)
                    else None,
                ) from exc
        raise NestcustomError(
            f"{self.reference}: the registry refused the login", "podman login first"
        )

    def _login(self, challenge: str) -> bool:
        found = credentials_for(self.reference)
        basic = (
            "Basic " + base64.b64encode(f"{found.username}:{found.password}".encode()).decode()
            if found
            else None
        )
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            self._auth = basic
            return basic is not None
        if scheme.lower() != "bearer":
            return False
        fields = dict(_challenge_params(params))
        if not fields.get("realm", "").startswith(("https://", "http://")):
            return False  # a token service is reached over HTTP(S) only, never file: or ftp:
        query = {"service": fields.get("service", "")}
        query["scope"] = fields.get("scope") or f"repository:{self.ref.repository}:pull"
        token_url = f"{fields['realm']}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(token_url)  # noqa: S310 - scheme checked above
        if basic:
            request.add_unredirected_header("Authorization", basic)
        try:
            with self._opener.open(request, timeout=60) as response:
                token = json.load(response)
        except (urllib.error.URLError, ValueError) as exc:
            raise NestcustomError(f"{self.reference}: cannot get a registry token: {exc}") from exc
        value = token.get("token") or token.get("access_token")
        self._auth = f"Bearer {value}" if value else None
        return bool(value)


def _challenge_params(text: str) -> Iterator[tuple[str, str]]:
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        yield key.strip().lower(), value.strip().strip('"')


def _is_plain_http(exc: urllib.error.URLError) -> bool:
    reason = str(exc.reason).lower()
    return (
        isinstance(exc.reason, ssl.SSLError)
        or "wrong version number" in reason
        or "record layer" in reason
    )


class _Counting:
    """A read-only stream that adds what it reads to the reader's `downloaded`."""

    def __init__(self, raw: IO[bytes], owner: BlobReader) -> None:
        self.raw = raw
        self.owner = owner

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.owner.downloaded += len(data)
        return data

    def readable(self) -> bool:
        return True
