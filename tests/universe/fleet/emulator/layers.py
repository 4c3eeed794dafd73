"""Test-universe emulator helper: the layers a host holds, imported as ostree-ext does.

Contract section 6 (ostree-rs-ext 0.9.1 and 0.7.1 `container/store.rs`, rpm-ostree
2022.16 `rust/src/sysroot_upgrade.rs`):

- A layer is held as a blob ref keyed by its manifest descriptor's digest (the
  compressed blob, not the diff_id); a layer already held is not downloaded again,
  whichever image or tag brought it. Missing layers are downloaded whole.
- Before importing, rpm-ostree prints `ostree chunk layers stored: N needed: M (SIZE)`
  for the commit layer and the chunks (up to the layer the `ostree.final-diffid` label
  names; without it only layer 0), then `custom layers stored: N needed: M (SIZE)` for
  the derived layers, each line only when it has a layer; ostree-ext prints `Fetching
  layer sha256:<12 hex> (SIZE)` and `Fetched layer sha256:<12 hex>` around each download
  of a derived layer (`Fetching ostree chunk ...` for a chunk). SIZE is glib's
  format_size of the compressed sizes.
- rpm-ostree 2022.16 (ostree-ext 0.9.1) removes, after a rebase, the old image and then
  every layer no stored image or deployment uses (`purge_refspec`, `gc_image_layers`);
  2022.8 (0.7.1) never removes one.

The host as installed holds its origin's layers (/etc/nestcustom-emu/origin-layers,
written by the test harness); a host without that file models no layers at all (it
prints no counts and keeps nothing), as it models no trust files. A held layer above
the origin is kept here as its blob, so the emulator's readers (trust files, image
files, kargs.d) never ask the registry for it again; each download is one line of
FETCHED (`DIGEST SIZE`), which is what the fleet tests count.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ORIGIN_LAYERS = Path("/etc/nestcustom-emu/origin-layers")  # written by the test harness
STORE = Path("/var/lib/nestcustom-emu/blob-refs")  # one file per held layer above the origin
FETCHED = Path("/var/lib/nestcustom-emu/fetched")  # one line per download: DIGEST SIZE


class LayerError(Exception):
    pass


def origin() -> set[str] | None:
    """The digests of the layers the host was installed from; None: not modelled."""
    if not ORIGIN_LAYERS.exists():
        return None
    return set(ORIGIN_LAYERS.read_text().split())


def format_size(size: int) -> str:
    """glib's g_format_size (G_FORMAT_SIZE_DEFAULT): SI units, one decimal."""
    if size < 1000:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _path(digest: str) -> Path:
    return STORE / digest.replace(":", "-")


def held(digest: str) -> bool:
    held_at_install = origin() or set()
    return digest in held_at_install or _path(digest).exists()


def _chunk_count(manifest: dict[str, Any], config: dict[str, Any]) -> int:
    """How many leading layers are the commit and its chunks (ostree-ext 0.9.1
    parse_manifest_layout): up to the one `ostree.final-diffid` names, else layer 0."""
    labels = (config.get("config") or {}).get("Labels") or {}
    final = labels.get("ostree.final-diffid")
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    if final and final in diff_ids:
        return diff_ids.index(final) + 1
    return 1


def pull(
    image: str, manifest: dict[str, Any], config: dict[str, Any], insecure: bool, auth: Path
) -> None:
    """Import the image's layers the host does not hold yet, printing what rpm-ostree
    prints, and log each download."""
    if origin() is None:
        return
    layers = list(manifest.get("layers") or [])
    split = _chunk_count(manifest, config)
    for title, group, kind in (
        ("ostree chunk layers", layers[:split], "ostree chunk"),
        ("custom layers", layers[split:], "layer"),
    ):
        needed = [layer for layer in group if not held(str(layer["digest"]))]
        if not group:
            continue
        size = sum(int(layer.get("size") or 0) for layer in needed)
        print(
            f"{title} stored: {len(group) - len(needed)} needed: {len(needed)} ({format_size(size)})",
            flush=True,
        )
        for layer in needed:
            digest = str(layer["digest"])
            print(f"Fetching {kind} {digest[:19]} ({format_size(int(layer.get('size') or 0))})")
            data = download(image, digest, insecure, auth)
            STORE.mkdir(parents=True, exist_ok=True)
            tmp = _path(digest).with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(_path(digest))
            with FETCHED.open("a") as log:
                log.write(f"{digest} {len(data)}\n")
            print(f"Fetched {kind} {digest[:19]}", flush=True)


def blob(image: str, digest: str, insecure: bool, auth: Path) -> bytes:
    """A layer's bytes: the held copy when the host has one, else from the registry (an
    origin layer, whose files the host has but the emulator does not keep)."""
    try:
        return _path(digest).read_bytes()
    except FileNotFoundError:
        return download(image, digest, insecure, auth)


def prune(used: set[str]) -> None:
    """gc_image_layers (ostree-ext 0.9.1): drop the held layers nothing uses."""
    if not STORE.is_dir():
        return
    for path in STORE.iterdir():
        if path.name.replace("-", ":", 1) not in used:
            path.unlink(missing_ok=True)


def download(image: str, digest: str, insecure: bool, auth: Path) -> bytes:
    """One GET of the blob from the registry's HTTP API (Basic credentials from the
    host's auth.json when the registry asks), its digest checked."""
    registry, _, rest = image.partition("/")
    repository = rest.partition("@")[0]
    if ":" in repository.rsplit("/", 1)[-1]:  # a tag
        repository = repository.rpartition(":")[0]
    url = f"{'http' if insecure else 'https'}://{registry}/v2/{repository}/blobs/{digest}"
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            data = bytes(answer.read())
    except urllib.error.HTTPError as exc:
        credentials = _credentials(auth, registry)
        if exc.code != 401 or credentials is None:
            raise LayerError(f"reading layer {digest}: {exc}") from None
        request.add_header("Authorization", f"Basic {credentials}")
        with urllib.request.urlopen(request, timeout=120) as answer:
            data = bytes(answer.read())
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise LayerError(f"reading layer {digest}: the registry sent other bytes")
    return data


def _credentials(auth: Path, registry: str) -> str | None:
    try:
        return str(json.loads(auth.read_text())["auths"][registry]["auth"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
