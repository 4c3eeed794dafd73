"""Trust as containers/image reads it: policy.json and registries.d
(containers-policy.json(5), containers-registries.d(5)), judged for one image.

Scopes of the `docker` transport match the image's repository: the most
specific of REPO@DIGEST, REPO, its namespaces, its registry and
`*.domain` wildcards wins, else the transport's "" entry, else `default`.
registries.d's `lookaside:` (or its old name `sigstore:`) says where a scope's
simple signatures are; the most specific scope wins, else `default-docker`.

The same reading serves a host's files (deploy) and an image's own (promote),
so `source` names whose files they are in messages. The texts come from hosts
and images: control characters are dropped before they reach a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from nestcustom.errors import NestcustomError
from nestcustom.sanitize import clean

ACCEPT_ANYTHING = "insecureAcceptAnything"
LABEL = "io.nestcustom.signing"  # TYPE:SCOPE ... (containerfile/signing.py writes it)


@dataclass(frozen=True)
class GpgRequirement:
    key_paths: tuple[str, ...]  # files where the policy is read (a host, an image)
    key_data: tuple[str, ...]  # base64 keyrings written in the policy


@dataclass(frozen=True)
class Judgement:
    """What a policy asks of one image."""

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


def own_scopes(label: str, repository: str) -> list[str]:
    """The `TYPE:SCOPE` entries of the image's io.nestcustom.signing label that cover it."""
    found = []
    for entry in label.split():
        _, _, scope = entry.partition(":")
        if repository == scope or repository.startswith(scope.rstrip("/") + "/"):
            found.append(entry)
    return found


def scope_candidates(repository: str, digest: str | None = None) -> list[str]:
    """The docker scopes that could name `repository`, the most specific first."""
    found = [f"{repository}@{digest}"] if digest else []
    parts = repository.split("/")
    found += ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    host = parts[0].split(":")[0]
    labels = host.split(".")
    found += ["*." + ".".join(labels[i:]) for i in range(1, len(labels))]
    return found


def judge(
    policy_text: str,
    repository: str,
    digest: str | None,
    *,
    source: str = "the host's /etc/containers/policy.json",
) -> Judgement:
    """What the policy.json (its text) requires of REPO@DIGEST."""
    try:
        policy: Any = json.loads(policy_text)
        default = policy.get("default") or []
        docker = (policy.get("transports") or {}).get("docker") or {}
    except (ValueError, AttributeError) as exc:
        raise NestcustomError(f"{source} is not readable: {clean(str(exc))}") from exc
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


def lookaside(
    files: dict[str, str], repository: str, *, source: str = "the host's registries.d"
) -> str | None:
    """The URL signatures of `repository` are read from, per registries.d files (name: text)."""
    default: dict[str, Any] = {}
    scopes: dict[str, dict[str, Any]] = {}
    for name in sorted(files):
        try:
            document = yaml.safe_load(files[name]) or {}
        except yaml.YAMLError as exc:
            raise NestcustomError(f"{source}/{name} is not YAML: {clean(str(exc))[:200]}") from exc
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
