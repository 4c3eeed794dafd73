"""The container registry, seen through skopeo: what a tag points at now."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.image.auth import auth_file_for
from nestcustom.image.events import split_reference
from nestcustom.image.updatecost import TagLayers, UpdateCost, layers_to_fetch, manifest_layers


@dataclass(frozen=True)
class Served:
    """What the registry serves under a tag: the manifest's digest and the image's labels."""

    digest: str
    image_id: str  # the config digest without sha256:, as podman names the image
    labels: dict[str, str]


def _skopeo(reference: str, tls_verify: bool, *args: str) -> list[str]:
    argv = [
        proc.require("skopeo", "skopeo"),
        "inspect",
        *args,
        f"--tls-verify={'true' if tls_verify else 'false'}",
    ]
    if authfile := auth_file_for(reference):
        argv.append(f"--authfile={authfile}")
    return [*argv, f"docker://{reference}"]


def skopeo_message(stderr: str) -> str:
    """skopeo's failure by its message (the `msg=` of its last log line, whole), not by a
    cut-off tail of the raw log line with its time and level."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "skopeo failed"
    found = re.search(r'msg="((?:[^"\\]|\\.)*)"', last) or re.search(r"msg=(.*)$", last)
    return (found.group(1).replace('\\"', '"') if found else last).strip()


def manifest(
    reference: str, *, tls_verify: bool = True, attempts: int = 3
) -> tuple[str, dict[str, object]]:
    """(manifest digest, manifest) of `reference` as the registry serves it now."""
    argv = _skopeo(reference, tls_verify, "--raw")
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            raw = proc.run(argv, timeout=120).raw_stdout
            break
        except proc.CommandError as exc:
            if attempt == attempts or "manifest unknown" in exc.stderr:
                raise NestcustomError(
                    f"cannot read the manifest of {reference}: {skopeo_message(exc.stderr)}"
                ) from exc
            time.sleep(delay)
            delay *= 2
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    document: dict[str, object] = json.loads(raw)
    return digest, document


def served(reference: str, *, tls_verify: bool = True) -> Served | None:
    """What the registry serves under `reference` now; None when it has no such tag."""
    done = proc.run(_skopeo(reference, tls_verify), check=False, timeout=120)
    if done.returncode != 0:
        if _no_such_tag(done.stderr):
            return None
        raise NestcustomError(
            f"cannot ask the registry about {reference}: {skopeo_message(done.stderr)}"
        )
    document = json.loads(done.stdout)
    config = proc.run(_skopeo(reference, tls_verify, "--config", "--raw"), timeout=120).raw_stdout
    return Served(
        str(document.get("Digest", "")),
        hashlib.sha256(config).hexdigest(),
        {str(k): str(v) for k, v in (document.get("Labels") or {}).items()},
    )


def served_layers(
    reference: str, *, tls_verify: bool = True, timeout: float = 120
) -> TagLayers | None:
    """(manifest digest, its layers' digests and compressed sizes) under `reference` now;
    None when the registry has no such tag, or serves an index there (no one layer list)."""
    done = proc.run(_skopeo(reference, tls_verify, "--raw"), check=False, timeout=timeout)
    if done.returncode != 0:
        if _no_such_tag(done.stderr):
            return None
        raise NestcustomError(
            f"cannot read the manifest of {reference}: {skopeo_message(done.stderr)}"
        )
    try:
        layers = manifest_layers(json.loads(done.raw_stdout))
    except ValueError as exc:
        raise NestcustomError(
            f"{reference}: the registry sent a manifest that is not JSON"
        ) from exc
    if layers is None:
        return None
    return TagLayers("sha256:" + hashlib.sha256(done.raw_stdout).hexdigest(), tuple(layers))


def layers_before_push(reference: str, *, tls_verify: bool = True) -> TagLayers | None:
    """What the tag serves just before a push, for the update figure; None when the
    registry cannot say (no tag, or unreachable, refusing, slow: the push that follows
    reports such a registry with its own hints, and the figure is only left out)."""
    try:
        return served_layers(reference, tls_verify=tls_verify, timeout=30)
    except NestcustomError:  # proc's CommandError too: not there in 30 s
        return None


def update_since(
    previous: TagLayers | None, reference: str, digest: str | None, *, tls_verify: bool = True
) -> UpdateCost | None:
    """What a host on `previous` (what the tag served before a push) downloads to run the
    image pushed under `reference` as `digest`; None when that cannot be read: the push
    is done by then, and a missing figure must not fail it."""
    if previous is None or digest is None:
        return None
    repository, _ = split_reference(reference)
    try:
        pushed = served_layers(f"{repository}@{digest}", tls_verify=tls_verify, timeout=30)
    except NestcustomError:
        return None
    if pushed is None:
        return None
    return layers_to_fetch((d for d, _ in previous.layers), pushed.layers)


def _no_such_tag(stderr: str) -> bool:
    lowered = stderr.lower()
    return "manifest unknown" in lowered or "name unknown" in lowered or "not found" in lowered


def image_architecture(reference: str, *, tls_verify: bool = True) -> str | None:
    """The image's architecture in `uname -m` terms (x86_64, aarch64), if the config says."""
    try:
        config = json.loads(
            proc.run(_skopeo(reference, tls_verify, "--config"), timeout=120).raw_stdout
        )
    except proc.CommandError as exc:
        raise NestcustomError(
            f"cannot read the image config of {reference}: {exc.stderr.strip()[-300:]}"
        ) from exc
    arch = config.get("architecture")
    return (
        {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch) if isinstance(arch, str) else None
    )


def config_id(reference: str, *, tls_verify: bool = True) -> str:
    """The ID podman would give `reference` once pulled (its config's digest), without pulling."""
    try:
        raw = proc.run(_skopeo(reference, tls_verify, "--config", "--raw"), timeout=120).raw_stdout
    except proc.CommandError as exc:
        raise NestcustomError(
            f"the base image {reference} is neither in local storage nor readable in its registry: "
            f"{exc.stderr.strip()[-300:]}",
            "pull it first (podman pull), or check the name and the registry",
        ) from exc
    return hashlib.sha256(raw).hexdigest()


def image_for_rollout(
    reference: str, *, tls_verify: bool = True, attempts: int = 3
) -> tuple[str, str | None, dict[str, str]]:
    """(manifest digest, architecture in `uname -m` terms, labels) of `reference`, read once.

    For deploy's checks before any host is touched. skopeo's failure is reported by its
    message (the `msg=` of its log line, whole), not by a cut-off tail of the raw log.
    """
    skopeo = proc.require("skopeo", "skopeo")
    verify = f"--tls-verify={'true' if tls_verify else 'false'}"

    def inspect(*args: str) -> bytes:
        delay = 1.0
        for attempt in range(1, attempts + 1):
            try:
                return proc.run(
                    [skopeo, "inspect", *args, verify, f"docker://{reference}"], timeout=120
                ).raw_stdout
            except proc.CommandError as exc:
                text = skopeo_message(exc.stderr)
                if attempt == attempts or any(
                    word in text
                    for word in ("manifest unknown", "unauthorized", "denied", "not found")
                ):
                    raise NestcustomError(f"cannot read {reference}: {text}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    raw = inspect("--raw")
    config: dict[str, object] = json.loads(inspect("--config"))
    arch = config.get("architecture")
    arch_name = (
        {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch) if isinstance(arch, str) else None
    )
    settings = config.get("config")
    labels = settings.get("Labels") if isinstance(settings, dict) else None
    label_map = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    return "sha256:" + hashlib.sha256(raw).hexdigest(), arch_name, label_map


def retag(pinned: str, tag_reference: str, *, tls_verify: bool = True) -> None:
    """Point `tag_reference` (IMAGE:TAG) at the manifest `pinned` (IMAGE@DIGEST) serves.

    skopeo copies within the repository with --preserve-digests: the blobs are there
    already, so only the manifest is put, byte for byte (any conversion would give the
    tag another digest than the one promoted, which the caller checks afterwards).
    """
    verify = "true" if tls_verify else "false"
    argv = [
        proc.require("skopeo", "skopeo"),
        "copy",
        "--preserve-digests",
        f"--src-tls-verify={verify}",
        f"--dest-tls-verify={verify}",
    ]
    if authfile := auth_file_for(tag_reference):
        argv.append(f"--authfile={authfile}")
    try:
        proc.run([*argv, f"docker://{pinned}", f"docker://{tag_reference}"], timeout=600)
    except proc.CommandError as exc:
        raise NestcustomError(
            f"cannot move {tag_reference} to {pinned}: {exc.stderr.strip()[-300:]}"
        ) from exc
