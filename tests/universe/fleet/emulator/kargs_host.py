"""Kernel arguments for the host-mode rpm-ostree emulator (contract section 2, "Kernel
arguments"): ostree's kernel-argument list (libostree ostree-kernel-args.c, v2022.7),
rpm-ostree kargs' patching (2022.16 src/daemon/rpmostreed-transaction-types.cxx
kernel_arg_apply_patching), and an image's /usr/lib/bootc/kargs.d read from its layers
in the registry, as a host has it in its /usr after the image is deployed.

Imported by rpm_ostree_host.py (installed beside it under /usr/lib/nestcustom-emu).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

KARGS_D = "usr/lib/bootc/kargs.d"
LAYER_CACHE = Path("/var/cache/nestcustom-emu-layers")  # shared by the test hosts


class KargsError(Exception):
    pass


# ------------------------------------------------------------------ ostree's list


class KernelArgs:
    """Ordered KEY[=VALUE] entries, as libostree keeps them."""

    def __init__(self, args: list[str]) -> None:
        self.order: list[tuple[str, str | None]] = [_split(a) for a in args]

    def strings(self) -> list[str]:
        return [k if v is None else f"{k}={v}" for k, v in self.order]

    def values(self, key: str) -> list[int]:
        return [i for i, (k, _) in enumerate(self.order) if k == key]

    def append(self, arg: str) -> None:
        self.order.append(_split(arg))

    def delete(self, arg: str) -> None:
        key, val = _split(arg)
        found = self.values(key)
        if not found:
            raise KargsError(f"No key '{key}' found")
        if len(found) == 1:
            if val is not None and self.order[found[0]][1] != val:
                raise KargsError(f"No karg '{key}={val}' found")
            del self.order[found[0]]
            return
        match = [i for i in found if self.order[i][1] == val]
        if not match:
            if val is None:
                raise KargsError(f"Multiple values for key '{arg}' found")
            raise KargsError(f"No karg '{arg}' found")
        del self.order[match[0]]

    def replace(self, arg: str) -> None:
        key, val = _split(arg)
        found = self.values(key)
        if not found:
            raise KargsError(f"No key '{key}' found")
        if val is not None and "=" in val:
            old, new = val.split("=", 1)
            match = [i for i in found if self.order[i][1] == old]
            if not match:
                raise KargsError(f"No karg '{key}={old}' found")
            self.order[match[0]] = (key, new)
            return
        if len(found) > 1:
            raise KargsError(f"Multiple values for key '{key}' found")
        self.order[found[0]] = (key, val)


def _split(arg: str) -> tuple[str, str | None]:
    key, eq, val = arg.partition("=")
    return key, (val if eq else None)


def patch(existing: list[str], opts: dict[str, list[str]]) -> tuple[list[str], bool]:
    """rpm-ostree kargs' order: deletes, replaces, appends, append-if-missing (against the
    arguments before), delete-if-present (likewise). (new arguments, changed)."""
    kargs = KernelArgs(existing)
    changed = False
    for arg in opts.get("--delete", []):
        kargs.delete(arg)
        changed = True
    for arg in opts.get("--replace", []):
        kargs.replace(arg)
        changed = True
    for arg in opts.get("--append", []):
        kargs.append(arg)
        changed = True
    for arg in opts.get("--append-if-missing", []):
        if arg not in existing:
            kargs.append(arg)
            changed = True
    for arg in opts.get("--delete-if-present", []):
        if arg in existing:
            kargs.delete(arg)
            changed = True
    return kargs.strings(), changed


# ------------------------------------------------------------------ an image's kargs.d


def image_kargsd(image: str, manifest: bytes, insecure: bool, auth: Path) -> dict[str, str]:
    """The image's usr/lib/bootc/kargs.d/*: its layers' entries there, bottom up, whiteouts
    applied. Each layer is read once per machine (cached by digest)."""
    files: dict[str, str] = {}
    for layer in json.loads(manifest).get("layers", []):
        changes = _layer_changes(image, layer, insecure, auth)
        if changes["clear"]:
            files.clear()
        for name, text in changes["files"].items():
            if text is None:
                files.pop(name, None)
            else:
                files[name] = text
    return files


def _layer_changes(image: str, layer: dict[str, Any], insecure: bool, auth: Path) -> dict[str, Any]:
    digest = str(layer["digest"])
    cached = LAYER_CACHE / f"{digest.replace(':', '-')}.json"
    try:
        return dict(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    # Beside it on the host; imported here, as the fast tests import this module alone.
    from layers import LayerError, blob  # type: ignore[import-not-found]

    try:
        data = blob(image, digest, insecure, auth)
    except LayerError as exc:
        raise KargsError(str(exc)) from None
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    changes: dict[str, Any] = {"clear": False, "files": {}}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            path = member.name.removeprefix("./").rstrip("/")
            parent, _, name = path.rpartition("/")
            if name.startswith(".wh."):
                gone = f"{parent}/{name[4:]}" if parent else name[4:]
                if (
                    (name == ".wh..wh..opq" and parent == KARGS_D)
                    or KARGS_D.startswith(gone + "/")
                    or gone == KARGS_D
                ):
                    changes["clear"] = True
                    changes["files"] = {}
                elif parent == KARGS_D:
                    changes["files"][name[4:]] = None
            elif parent == KARGS_D and member.isfile():
                extracted = tar.extractfile(member)
                text = extracted.read().decode(errors="replace") if extracted else ""
                changes["files"][name] = text
    try:
        LAYER_CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(changes))
        tmp.replace(cached)
    except OSError:
        pass
    return changes
