"""A registry's HTTP API for what skopeo cannot do: a manifest PUT by digest or to a tag,
and small blobs (an SBOM, an empty config).

Tagging a pushed image is a manifest-only copy: the manifest, read by digest,
PUT to the tag (its blobs are there already). Credentials are the ones podman
and skopeo use (auth.py), with the token flow registries ask for; TLS is
verified unless the user turned it off, and then plain HTTP is tried when the
registry does not speak TLS, as skopeo does. Credentials never follow a
redirect to another host.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from nestcustom.errors import NestcustomError
from nestcustom.image.auth import credentials_for

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


class _NoAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.headers.pop("Authorization", None)
            new.unredirected_hdrs.pop("Authorization", None)
        return new


def split_name(reference: str) -> tuple[str, str]:
    """(registry host[:port], repository path) of REGISTRY/PATH[:tag][@digest]."""
    name = reference.partition("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rpartition(":")[0]
    registry, _, path = name.partition("/")
    if not path:
        raise NestcustomError(f"{reference}: no registry in the reference")
    return registry, path


@dataclass
class Repository:
    """One repository of a registry, as a client of its HTTP API."""

    name: str  # REGISTRY/PATH, without tag or digest
    tls_verify: bool = True
    _auth: str | None = None
    _scheme: str = "https"
    _opener: urllib.request.OpenerDirector = field(init=False)

    def __post_init__(self) -> None:
        self.registry, self.path = split_name(self.name)
        context = ssl.create_default_context()
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(
            _NoAuthOnRedirect(), urllib.request.HTTPSHandler(context=context)
        )

    # -- manifests -------------------------------------------------------------

    def manifest(self, reference: str) -> tuple[bytes, str]:
        """(bytes, media type) of the manifest under a tag or digest."""
        status, body, headers = self._call("GET", f"manifests/{reference}", accept=ACCEPT)
        if status != 200:
            raise NestcustomError(f"{self.name}:{reference}: the registry answered {status}")
        return body, headers.get("Content-Type", "")

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; its digest."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        status, answer, _ = self._call(
            "PUT", f"manifests/{reference}", body=body, content_type=media_type
        )
        if status not in (200, 201):
            raise NestcustomError(
                f"the registry refused the manifest for {self.name}:{reference} "
                f"({status}): {_error_text(answer)}",
                "check the login (podman login) and that the registry accepts this manifest type",
            )
        return digest

    def tag(self, digest: str, tag: str) -> None:
        """Point `tag` at the manifest `digest` (a manifest-only copy: no blob moves)."""
        body, media_type = self.manifest(digest)
        self.put_manifest(tag, body, media_type)

    # -- blobs -----------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        status, _, _ = self._call("HEAD", f"blobs/{digest}")
        return status == 200

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        """A blob as a stream, read as it arrives (a layer is never held whole)."""
        status, _, _ = self._call("HEAD", f"blobs/{digest}")  # logs in, settles the scheme
        if status != 200:
            raise NestcustomError(f"{self.name}: the registry answered {status} for blob {digest}")
        request = urllib.request.Request(self._url(f"blobs/{digest}"))  # noqa: S310
        if self._auth:
            request.add_unredirected_header("Authorization", self._auth)
        try:
            response = self._opener.open(request, timeout=120)
        except urllib.error.URLError as exc:
            raise NestcustomError(f"{self.name}: cannot read blob {digest}: {exc.reason}") from exc
        with response:
            yield response

    def put_blob(self, data: bytes) -> str:
        """Upload a small blob in one request (unless the registry has it); its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.has_blob(digest):
            return digest
        status, answer, headers = self._call("POST", "blobs/uploads/")
        location = headers.get("Location")
        if status != 202 or not location:
            raise NestcustomError(
                f"the registry refused an upload to {self.name} ({status}): {_error_text(answer)}"
            )
        url = urllib.parse.urljoin(self._url(""), location)
        separator = "&" if "?" in url else "?"
        status, answer, _ = self._call(
            "PUT",
            url + f"{separator}digest={urllib.parse.quote(digest)}",
            body=data,
            content_type="application/octet-stream",
        )
        if status not in (201, 204):
            raise NestcustomError(
                f"the registry refused a blob for {self.name} ({status}): {_error_text(answer)}"
            )
        return digest

    # -- HTTP ------------------------------------------------------------------

    def _url(self, tail: str) -> str:
        return f"{self._scheme}://{self.registry}/v2/{self.path}/{tail}"

    def _call(
        self,
        method: str,
        tail: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        for attempt in range(3):
            url = tail if tail.startswith(("http://", "https://")) else self._url(tail)
            request = urllib.request.Request(url, data=body, method=method)  # noqa: S310
            if content_type:
                request.add_header("Content-Type", content_type)
            if accept:
                request.add_header("Accept", accept)
            if self._auth:
                request.add_unredirected_header("Authorization", self._auth)
            try:
                with self._opener.open(request, timeout=120) as response:
                    return response.status, response.read(), dict(response.headers.items())
            except urllib.error.HTTPError as exc:
                answer = exc.read()
                if exc.code == 401 and attempt < 2 and self._login(exc.headers):
                    continue
                return exc.code, answer, dict(exc.headers.items())
            except urllib.error.URLError as exc:
                if self._scheme == "https" and not self.tls_verify and _plain_http(exc):
                    self._scheme = "http"
                    continue
                raise NestcustomError(
                    f"cannot reach the registry {self.registry}: {exc.reason}",
                    "with a registry without TLS, pass --no-tls-verify"
                    if _plain_http(exc)
                    else None,
                ) from exc
        raise NestcustomError(f"{self.name}: the registry refused the login", "podman login first")

    def _login(self, headers: object) -> bool:
        challenge = str(getattr(headers, "get", lambda *_: "")("WWW-Authenticate", "") or "")
        found = credentials_for(self.name)
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
        fields = {
            k.strip().lower(): v.strip().strip('"')
            for k, _, v in (part.partition("=") for part in params.split(","))
        }
        realm = fields.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            return False
        query = urllib.parse.urlencode(
            {
                "service": fields.get("service", ""),
                "scope": f"repository:{self.path}:pull,push",
            }
        )
        request = urllib.request.Request(f"{realm}?{query}")  # noqa: S310 - scheme checked
        if basic:
            request.add_unredirected_header("Authorization", basic)
        try:
            with self._opener.open(request, timeout=60) as response:
                token = json.load(response)
        except (urllib.error.URLError, ValueError) as exc:
            raise NestcustomError(f"{self.name}: cannot get a registry token: {exc}") from exc
        value = token.get("token") or token.get("access_token")
        self._auth = f"Bearer {value}" if value else None
        return bool(value)


def _plain_http(exc: urllib.error.URLError) -> bool:
    reason = str(exc.reason).lower()
    return isinstance(exc.reason, ssl.SSLError) or "wrong version number" in reason


def _error_text(answer: bytes) -> str:
    try:
        errors = json.loads(answer).get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or "no detail"
    except (ValueError, AttributeError):
        return answer.decode(errors="replace").strip()[:200] or "no detail"
