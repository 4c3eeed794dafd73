"""A host's trust, as containers/image reads it: policy.json and registries.d
(containers-policy.json(5), containers-registries.d(5)), judged for one image.

Scopes of the `docker` transport match the image's repository: the most
specific of REPO@DIGEST, REPO, its namespaces, its registry and
`*.domain` wildcards wins, else the transport's "" entry, else `default`.
registries.d's `lookaside:` (or its old name `sigstore:`) says where a scope's
simple signatures are; the most specific scope wins, else `default-docker`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from nestcustom.deploy.sanitize import clean
from nestcustom.errors import NestcustomError

ACCEPT_ANYTHING = "insecureAcceptAnything"


@dataclass(frozen=True)
class GpgRequirement:
    key_paths: tuple[str, ...]  # files on the host
    key_data: tuple[str, ...]  # base64 keyrings written in the policy


@dataclass(frozen=True)
class Judgement:
    """What a host's policy asks of one image."""

    scope: (
        str  # the scope that matched ("" for the transport's default, "default" for the policy's)
    )
    kinds: tuple[str, ...]  # the requirement types, in order
    gpg: tuple[GpgRequirement, ...]
    default_accepts_anything: bool  # rpm-ostree's ostree-image-signed: refuses such a policy

    @property
    def rejects(self) -> bool:
        return "reject" in self.kinds

    @property
    def accepts_anything(self) -> bool:
        return not self.kinds or all(k == ACCEPT_ANYTHING for k in self.kinds)


def scope_candidates(repository: str, digest: str | None = None) -> list[str]:
    """The docker scopes that could name `repository`, the most specific first."""
    found = [f"{repository}@{digest}"] if digest else []
    parts = repository.split("/")
    found += ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    host = parts[0].split(":")[0]
    labels = host.split(".")
    found += ["*." + ".".join(labels[i:]) for i in range(1, len(labels))]
    return found


def judge(policy_text: str, repository: str, digest: str | None) -> Judgement:
    """What the host's policy.json (its text) requires of REPO@DIGEST."""
    try:
        policy: Any = json.loads(policy_text)
        default = policy.get("default") or []
        docker = (policy.get("transports") or {}).get("docker") or {}
    except (ValueError, AttributeError) as exc:
        raise NestcustomError(
            f"the host's /etc/containers/policy.json is not readable: {clean(str(exc))}"
        ) from exc
    scope, requirements = "default", default
    for candidate in [*scope_candidates(repository, digest), ""]:
        if candidate in docker:
            scope, requirements = candidate, docker[candidate]
            break
    kinds = tuple(str(r.get("type", "")) for r in requirements if isinstance(r, dict))
    gpg = tuple(
        GpgRequirement(
            tuple(
                str(p)
                for p in ([r["keyPath"]] if r.get("keyPath") else [])
                + list(r.get("keyPaths") or [])
            ),
            (str(r["keyData"]),) if r.get("keyData") else (),
        )
        for r in requirements
        if isinstance(r, dict)
        and r.get("type") == "signedBy"
        and r.get("keyType", "GPGKeys") == "GPGKeys"
    )
    only_default = [r.get("type") for r in default if isinstance(r, dict)]
    return Judgement(scope, kinds, gpg, only_default == [ACCEPT_ANYTHING])


def lookaside(files: dict[str, str], repository: str) -> str | None:
    """The URL signatures of `repository` are read from, per the host's registries.d files."""
    default: dict[str, Any] = {}
    scopes: dict[str, dict[str, Any]] = {}
    for name in sorted(files):
        try:
            document = yaml.safe_load(files[name]) or {}
        except yaml.YAMLError as exc:
            raise NestcustomError(
                f"the host's registries.d/{name} is not YAML: {clean(str(exc))[:200]}"
            ) from exc
        if not isinstance(document, dict):
            continue
        if isinstance(document.get("default-docker"), dict):
            default = document["default-docker"]
        for key, entry in (document.get("docker") or {}).items():
            if isinstance(entry, dict):
                scopes[str(key)] = entry
    for key in scope_candidates(repository):
        if key in scopes:
            entry = scopes[key]
            break
    else:
        entry = default
    url = entry.get("lookaside") or entry.get("sigstore")
    return str(url) if url else None


@dataclass(frozen=True)
class TrustOptions:
    """Whether and how a rollout proves signatures on its hosts."""

    required: bool  # the image carries a policy for its own scope, or --signed was given
    reason: str  # why, in words
    unsigned: bool = False  # --unsigned: skip it, loudly
    bootstrap: bool = False  # --bootstrap-trust: hosts without a policy for the image get it
