"""Where simple signatures live: a "lookaside" web server (containers-registries.d(5)).

A signature of manifest sha256:HEX of REGISTRY/PATH is
`BASE/PATH@sha256=HEX/signature-N` (N from 1), which hosts read over HTTP(S)
from the `lookaside:` (old name: `sigstore:`) URL their registries.d gives for
the scope, and which a signer writes to the `lookaside-staging:` (old:
`sigstore-staging:`) location: a `file://` directory that a web server
publishes, or here also an `http(s)://` URL that takes a PUT (a WebDAV
directory), so CI can upload without a file share.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from nestcustom.errors import BadInputError, NestcustomError

SYSTEM_DIR = Path("/etc/containers/registries.d")


def registries_dir() -> Path:
    """The directory containers/image reads: the user's when it exists, else the system's."""
    user = Path(os.environ.get("HOME", "~")).expanduser() / ".config/containers/registries.d"
    return user if user.is_dir() else SYSTEM_DIR


def scope_keys(repository: str) -> list[str]:
    """REG/NS/NAME -> [REG/NS/NAME, REG/NS, REG]: the most specific first."""
    parts = repository.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def configured(repository: str, directory: Path | None = None) -> dict[str, str]:
    """The registries.d entry (lookaside and staging URLs) that applies to `repository`."""
    directory = directory or registries_dir()
    default: dict[str, str] = {}
    scopes: dict[str, dict[str, str]] = {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BadInputError(f"{path}: not readable as registries.d YAML: {exc}") from exc
        if not isinstance(document, dict):
            continue
        if isinstance(document.get("default-docker"), dict):
            default = {str(k): str(v) for k, v in document["default-docker"].items()}
        for scope, entry in (document.get("docker") or {}).items():
            if isinstance(entry, dict):
                scopes[str(scope)] = {str(k): str(v) for k, v in entry.items()}
    for key in scope_keys(repository):
        if key in scopes:
            return scopes[key]
    return default


def staging_url(repository: str, explicit: str | None) -> str:
    """Where signatures of `repository` are written: --signature-store, else registries.d."""
    if explicit:
        url = explicit
    else:
        entry = configured(repository)
        url = (
            entry.get("lookaside-staging")
            or entry.get("sigstore-staging")
            or entry.get("lookaside")
            or entry.get("sigstore")
            or ""
        )
    if not url:
        raise BadInputError(
            f"no place to store signatures of {repository}",
            f"pass --signature-store file:///DIR (a directory your web server publishes) or "
            f"add `lookaside-staging:` for {repository} in {registries_dir()}",
        )
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("file", "http", "https"):
        raise BadInputError(
            f"the signature store {url!r} is neither a file://, http:// nor https:// URL"
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class SignatureStore:
    base: str  # file:///DIR or http(s)://HOST/PATH

    def url(self, path: str, digest: str, index: int) -> str:
        algorithm, _, hex_digest = digest.partition(":")
        return f"{self.base}/{path}@{algorithm}={hex_digest}/signature-{index}"

    def existing(self, path: str, digest: str) -> list[bytes]:
        """The signatures stored for the digest, in order."""
        found = []
        for index in range(1, 100):
            data = self._read(self.url(path, digest, index))
            if data is None:
                break
            found.append(data)
        return found

    def store(self, path: str, digest: str, signature: bytes) -> str:
        """Add `signature` (as the next signature-N, unless already there); its URL."""
        stored = self.existing(path, digest)
        if signature in stored:
            return self.url(path, digest, stored.index(signature) + 1)
        url = self.url(path, digest, len(stored) + 1)
        self._write(url, signature)
        return url

    def _read(self, url: str) -> bytes | None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file":
            target = Path(urllib.parse.unquote(parts.path))
            return target.read_bytes() if target.is_file() else None
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - http(s)
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise NestcustomError(f"the signature store answered {exc.code} for {url}") from exc
        except urllib.error.URLError as exc:
            raise NestcustomError(f"cannot reach the signature store {url}: {exc.reason}") from exc

    def _write(self, url: str, data: bytes) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file":
            target = Path(urllib.parse.unquote(parts.path))
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".partial")
                partial.write_bytes(data)
                partial.chmod(0o644)
                partial.replace(target)  # readers never see half a signature
            except OSError as exc:
                raise NestcustomError(
                    f"cannot write the signature to {target}: {exc.strerror}",
                    "check that the signature store directory is writable",
                ) from exc
            return
        request = urllib.request.Request(url, data=data, method="PUT")  # noqa: S310
        request.add_header("Content-Type", "application/octet-stream")
        try:
            with urllib.request.urlopen(request, timeout=60):  # noqa: S310 - http(s) only
                pass
        except urllib.error.HTTPError as exc:
            raise NestcustomError(
                f"the signature store refused the upload to {url}: {exc.code} {exc.reason}",
                "the server must accept PUT there (a WebDAV directory), or use a file:// store",
            ) from exc
        except urllib.error.URLError as exc:
            raise NestcustomError(f"cannot reach the signature store {url}: {exc.reason}") from exc
