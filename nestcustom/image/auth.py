"""Registry credentials, found where podman and skopeo look for them.

containers-auth.json(5): REGISTRY_AUTH_FILE when set (and then only it);
otherwise ${XDG_RUNTIME_DIR}/containers/auth.json (/run/containers/UID/auth.json
for root), ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
~/.docker/config.json and ~/.dockercfg, the first that has an entry for the
registry winning. Entries are keyed by registry or by registry/namespace/...,
the most specific match first. The API service cannot see the client's files,
so the push carries what is found here; skopeo gets the file with --authfile.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path

from nestcustom.errors import NestcustomError


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    source: Path  # the auth file they came from


def auth_files() -> list[Path]:
    """The auth files in the order podman reads them (existing or not)."""
    if explicit := os.environ.get("REGISTRY_AUTH_FILE"):
        return [Path(explicit)]
    home = Path.home()
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        first = Path(runtime) / "containers" / "auth.json"
    else:
        first = Path(f"/run/containers/{os.getuid()}/auth.json")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [
        first,
        config / "containers" / "auth.json",
        home / ".docker" / "config.json",
        home / ".dockercfg",
    ]


def credentials_for(reference: str) -> Credentials | None:
    """The user and password for pushing `reference`, if an auth file has them."""
    keys = _keys(reference)
    for path in auth_files():
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise NestcustomError(
                f"cannot read the auth file {path}: {exc}",
                "fix or remove it, or point REGISTRY_AUTH_FILE at a valid one",
            ) from exc
        entries = document.get("auths", document) if isinstance(document, dict) else {}
        if not isinstance(entries, dict):
            continue
        normalized = {_strip_scheme(str(k)): v for k, v in entries.items()}
        for key in keys:
            entry = normalized.get(key)
            if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
                return _decode(entry["auth"], path)
    return None


def auth_file_for(reference: str) -> Path | None:
    """The file that holds credentials for `reference` (for skopeo --authfile)."""
    found = credentials_for(reference)
    return found.source if found else None


def _keys(reference: str) -> list[str]:
    """`reg/ns/name:tag` -> [reg/ns/name, reg/ns, reg]: most specific first."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name.rsplit(":", 1)[0]
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _strip_scheme(key: str) -> str:
    for scheme in ("https://", "http://"):
        key = key.removeprefix(scheme)
    return key.rstrip("/").removesuffix("/v1").removesuffix("/v2")


def _decode(auth: str, path: Path) -> Credentials:
    try:
        user, sep, password = base64.b64decode(auth).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise NestcustomError(f"the auth file {path} holds an unreadable entry") from exc
    if not sep:
        raise NestcustomError(f"the auth file {path} holds an entry without a password")
    return Credentials(user, password, path)
