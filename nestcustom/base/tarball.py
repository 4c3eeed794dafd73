"""The root filesystem as one deterministic tarball: the image's single layer.

GNU tar does it (a well-kept tool for exactly this): entries sorted by name,
numeric owners kept as they are (never root-squashed: files owned by service
users stay theirs), modes including setuid bits, hard links, and file
capabilities (security.capability, as a PAX xattr record, which podman's
storage applies). The PAX headers carry no atime, ctime or process id, and
every time the install itself produced was already set to the ISO's date, so
the same root gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import NestcustomError


@dataclass(frozen=True)
class Layer:
    path: Path
    digest: str  # sha256:... of the uncompressed tar (the image's diff_id)
    size: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def write_layer(root: Path, out: Path) -> Layer:
    tar = proc.require("tar", "tar")
    try:
        proc.run(
            [
                tar,
                "--create",
                "--file",
                str(out),
                "--directory",
                str(root),
                "--format=pax",
                "--sort=name",
                "--numeric-owner",
                # no --mtime clamping: package files keep their recorded times (rpm -V stays
                # clean) and slim.settle_times already gave everything newer the ISO's time
                "--xattrs",
                "--xattrs-include=security.capability",
                "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                "--no-acls",
                "--no-selinux",
                ".",
            ],
            timeout=3600,
        )
    except proc.CommandError as exc:
        if "No space left" in exc.stderr:
            raise NestcustomError(
                "writing the image layer failed: no space left in the work directory",
                "free space there or pass --workdir on a larger file system",
            ) from exc
        raise
    return Layer(out, _sha256(out), out.stat().st_size)
