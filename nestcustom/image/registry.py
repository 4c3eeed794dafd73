"""The container registry, seen through skopeo: what a tag points at now."""

from __future__ import annotations

import hashlib
import json
import re
import time

from nestcustom import proc
from nestcustom.errors import NestcustomError


def manifest(
    reference: str, *, tls_verify: bool = True, attempts: int = 3
) -> tuple[str, dict[str, object]]:
    """(manifest digest, manifest) of `reference` as the registry serves it now."""
    skopeo = proc.require("skopeo", "skopeo")
    argv = [
        skopeo,
        "inspect",
        "--raw",
        f"--tls-verify={'true' if tls_verify else 'false'}",
        f"docker://{reference}",
    ]
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            raw = proc.run(argv, timeout=120).raw_stdout
            break
        except proc.CommandError as exc:
            if attempt == attempts or "manifest unknown" in exc.stderr:
                raise NestcustomError(
                    f"cannot read the manifest of {reference}: {exc.stderr.strip()[-300:]}"
                ) from exc
            time.sleep(delay)
            delay *= 2
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    document: dict[str, object] = json.loads(raw)
    return digest, document


def image_architecture(reference: str, *, tls_verify: bool = True) -> str | None:
    """The image's architecture in `uname -m` terms (x86_64, aarch64), if the config says."""
    skopeo = proc.require("skopeo", "skopeo")
    argv = [
        skopeo,
        "inspect",
        "--config",
        f"--tls-verify={'true' if tls_verify else 'false'}",
        f"docker://{reference}",
    ]
    try:
        config = json.loads(proc.run(argv, timeout=120).raw_stdout)
    except proc.CommandError as exc:
        raise NestcustomError(
            f"cannot read the image config of {reference}: {exc.stderr.strip()[-300:]}"
        ) from exc
    arch = config.get("architecture")
    return (
        {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch) if isinstance(arch, str) else None
    )


def image_for_rollout(
    reference: str, *, tls_verify: bool = True, attempts: int = 3
) -> tuple[str, str | None, dict[str, str]]:
    """(manifest digest, architecture in `uname -m` terms, labels) of `reference`, read once.

    For deploy's checks before any host is touched. skopeo's failure is reported by its
    message (the `msg=` of its log line, whole), not by a cut-off tail of the raw log.
    """
    skopeo = proc.require("skopeo", "skopeo")
    verify = f"--tls-verify={'true' if tls_verify else 'false'}"

    def message(stderr: str) -> str:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else "skopeo failed"
        found = re.search(r'msg="((?:[^"\\]|\\.)*)"', last) or re.search(r"msg=(.*)$", last)
        return (found.group(1).replace('\\"', '"') if found else last).strip()

    def inspect(*args: str) -> bytes:
        delay = 1.0
        for attempt in range(1, attempts + 1):
            try:
                return proc.run(
                    [skopeo, "inspect", *args, verify, f"docker://{reference}"], timeout=120
                ).raw_stdout
            except proc.CommandError as exc:
                text = message(exc.stderr)
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
