"""An image's config facts (ID, labels, layer diff IDs), from local storage or its registry.

Local storage is asked first, with one `podman image inspect`; an image only
in a registry is read with `skopeo inspect --config` (no pull, no layers).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.image.auth import auth_file_for


@dataclass(frozen=True)
class ImageFacts:
    reference: str
    image_id: str  # config digest, without sha256:
    labels: dict[str, str]
    diff_ids: tuple[str, ...]  # uncompressed layer digests, bottom first
    where: str  # "local" or "registry"
    history: tuple[str, ...] = ()  # each history entry's created_by, bottom first


def _history(entries: object) -> tuple[str, ...]:
    if not isinstance(entries, list):
        return ()
    return tuple(str(e.get("created_by", "")) for e in entries if isinstance(e, dict))


def local_facts(reference: str) -> ImageFacts | None:
    podman = proc.require("podman", "podman")
    done = proc.run([podman, "image", "inspect", "--format", "json", reference], check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    item = json.loads(done.stdout)[0]
    labels = (item.get("Config") or {}).get("Labels") or item.get("Labels") or {}
    return ImageFacts(
        reference,
        str(item["Id"]).removeprefix("sha256:"),
        {str(k): str(v) for k, v in labels.items()},
        tuple((item.get("RootFS") or {}).get("Layers") or ()),
        "local",
        _history(item.get("History")),
    )


def skopeo_argv(reference: str, tls_verify: bool, *args: str) -> list[str]:
    argv = [proc.require("skopeo", "skopeo"), *args, f"--tls-verify={str(tls_verify).lower()}"]
    if authfile := auth_file_for(reference):
        argv.append(f"--authfile={authfile}")
    return [*argv, f"docker://{reference}"]


def registry_facts(reference: str, tls_verify: bool = True) -> ImageFacts | None:
    done = proc.run(
        skopeo_argv(reference, tls_verify, "inspect", "--config", "--raw"), check=False, timeout=120
    )
    if done.returncode != 0:
        lowered = done.stderr.lower()
        if any(s in lowered for s in ("manifest unknown", "name unknown", "not found")):
            return None
        raise NestcustomError(
            f"cannot read {reference} from its registry: {done.stderr.strip()[-300:]}",
            "check the name, the login (auth.json) and --tls-verify",
        )
    config = json.loads(done.raw_stdout)
    labels = (config.get("config") or {}).get("Labels") or {}
    return ImageFacts(
        reference,
        hashlib.sha256(done.raw_stdout).hexdigest(),
        {str(k): str(v) for k, v in labels.items()},
        tuple((config.get("rootfs") or {}).get("diff_ids") or ()),
        "registry",
        _history(config.get("history")),
    )


def image_facts(reference: str, tls_verify: bool = True) -> ImageFacts | None:
    """The image under `reference`, locally if podman has it, else in its registry."""
    found = local_facts(reference)
    if found is None and not reference.startswith("localhost/"):  # podman's, not a registry
        found = registry_facts(reference, tls_verify)
    return found
