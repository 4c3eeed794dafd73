"""Test-universe emulator helper: the systemd units an image brings, and what they run.

A real host boots its deployment's /usr and gets its image's /etc merged with its own.
The emulator keeps deployments as records, not trees; besides the trust files
(trustfiles.py) it carries, from the image's layers above the host's origin, the files
that make an image act on its own after a boot: its unit files and their enablement
links (/usr/lib/systemd/system, /etc/systemd/system), and nestcustom's programs and
settings for them (/usr/libexec/nestcustom, /usr/lib/nestcustom, Zincati's config.d).
When a deployment boots, the files the previous one brought go back to the host's own
(or away) and this one's are put in place. The units it enables for multi-user.target
are listed in /run/nestcustom-emu/boot-units for nc-init to start: only an image's
units run, the host's own (Debian's) are modelled by the units file.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from layers import ORIGIN_LAYERS, blob  # type: ignore[import-not-found]

ROOT = Path("/var/lib/nestcustom-emu/imagefiles")
APPLIED = ROOT / "applied.json"  # what the booted deployment's record put on the host
BOOT_UNITS = Path("/run/nestcustom-emu/boot-units")
WANTS = "etc/systemd/system/multi-user.target.wants/"
PREFIXES = (
    "usr/lib/systemd/system/",
    "etc/systemd/system/",
    "usr/libexec/nestcustom/",
    "usr/lib/nestcustom/",
    "etc/zincati/config.d/",
)

# A file's record: {"data": base64} or {"link": target}; None: deleted by the image.
Entry = dict[str, str] | None


def _wanted(name: str) -> bool:
    return name.startswith(PREFIXES)


def stage(
    checksum: str, image: str, manifest: dict[str, Any], insecure: bool, auth_file: Path
) -> None:
    """Record the files the image at `checksum` brings, top layer first (the first seen
    of a path wins). Only on a host whose origin is known, as for trust files."""
    if not ORIGIN_LAYERS.exists():
        return
    origin = set(ORIGIN_LAYERS.read_text().split())
    found: dict[str, Entry] = {}
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
                if not _wanted(name) or name in found:
                    continue
                if member.issym():
                    found[name] = {"link": member.linkname}
                elif member.isfile():
                    content = tar.extractfile(member)
                    raw = content.read() if content else b""
                    found[name] = {"data": base64.b64encode(raw).decode(), "mode": str(member.mode)}
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / f"{checksum}.json").write_text(json.dumps(found))


def _read(path: Path) -> Entry:
    if path.is_symlink():
        return {"link": os.readlink(path)}
    if path.is_file():
        return {
            "data": base64.b64encode(path.read_bytes()).decode(),
            "mode": str(path.stat().st_mode & 0o7777),
        }
    return None


def _put(path: Path, entry: Entry) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    if entry is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if "link" in entry:
        path.symlink_to(entry["link"])
    else:
        path.write_bytes(base64.b64decode(entry["data"]))
        path.chmod(int(entry.get("mode", "420")))


def boot(checksum: str) -> None:
    """Put the booting deployment's files in place, after giving back what the last one
    brought; list the units it enables for nc-init."""
    BOOT_UNITS.parent.mkdir(parents=True, exist_ok=True)
    BOOT_UNITS.write_text("")
    if not ORIGIN_LAYERS.exists():
        return
    ROOT.mkdir(parents=True, exist_ok=True)
    # applied: path -> the host's own entry before the image's replaced it.
    applied: dict[str, Entry] = json.loads(APPLIED.read_text()) if APPLIED.exists() else {}
    for name, own in applied.items():
        _put(Path("/") / name, own)
    record = ROOT / f"{checksum}.json"
    files: dict[str, Entry] = json.loads(record.read_text()) if record.exists() else {}
    now: dict[str, Entry] = {}
    for name, entry in files.items():
        path = Path("/") / name
        now[name] = _read(path)
        _put(path, entry)
    APPLIED.write_text(json.dumps(now))
    units = [
        name[len(WANTS) :] for name, entry in files.items() if name.startswith(WANTS) and entry
    ]
    BOOT_UNITS.write_text("".join(f"{unit}\n" for unit in sorted(units)))
