"""Test-universe emulator helper: a deployment's trust files, from its image's layers.

ostree gives a deployment the /etc of its image (merged with the host's own
changes). The emulator keeps deployments as records, not trees, so the files
that decide what the host trusts (policy.json, registries.d, the keys under
/etc/pki/containers) are read from the staged image's layers above the
host's origin (the base it was installed from, whose files the host already
has) and put in place when that deployment boots. Layers are the ones the host
holds (layers.py); nothing else of the image is kept.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from layers import ORIGIN_LAYERS, blob  # type: ignore[import-not-found]  # beside it on the host

ROOT = Path("/var/lib/nestcustom-emu/trust")
PREFIXES = ("etc/containers/policy.json", "etc/containers/registries.d/", "etc/pki/containers/")


def _wanted(name: str) -> bool:
    return any(name == p or (p.endswith("/") and name.startswith(p)) for p in PREFIXES)


def stage(
    checksum: str, image: str, manifest: dict[str, Any], insecure: bool, auth_file: Path
) -> None:
    """Record the trust files the image at `checksum` brings (None: deleted there). Only on
    a host whose origin is known (the harness says so): others model no trust files."""
    if not ORIGIN_LAYERS.exists():
        return
    origin = set(ORIGIN_LAYERS.read_text().split())
    found: dict[str, str | None] = {}
    for layer in reversed(manifest.get("layers") or []):
        if layer["digest"] in origin:
            break
        data = blob(image, layer["digest"], insecure, auth_file)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                directory, _, base = name.rpartition("/")
                if base.startswith(".wh."):
                    hidden = f"{directory}/{base[4:]}"
                    if _wanted(hidden):
                        found.setdefault(hidden, None)
                    continue
                if member.isfile() and _wanted(name) and name not in found:
                    content = tar.extractfile(member)
                    found[name] = base64.b64encode(content.read() if content else b"").decode()
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / f"{checksum}.json").write_text(json.dumps(found))


def boot(checksum: str) -> None:
    """Put the trust files of the deployment that boots in place (the origin's at first)."""
    if not ORIGIN_LAYERS.exists():
        return
    ROOT.mkdir(parents=True, exist_ok=True)
    origin = ROOT / "origin.json"
    if not origin.exists():  # the host as installed: remember its own files
        mine: dict[str, str | None] = {}
        for prefix in PREFIXES:
            path = Path("/") / prefix
            files = sorted(path.rglob("*")) if prefix.endswith("/") and path.is_dir() else [path]
            for file in files:
                if file.is_file():
                    mine[str(file)[1:]] = base64.b64encode(file.read_bytes()).decode()
        origin.write_text(json.dumps(mine))
    # The origin's files, then what the deployment's own layers changed.
    for prefix in PREFIXES[1:]:
        shutil.rmtree(Path("/") / prefix, ignore_errors=True)
    (Path("/") / PREFIXES[0]).unlink(missing_ok=True)
    record = ROOT / f"{checksum}.json"
    layers = [json.loads(origin.read_text())]
    if record.exists():
        layers.append(json.loads(record.read_text()))
    for files in layers:
        for name, content in files.items():
            path = Path("/") / name
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(base64.b64decode(content))
