"""The root filesystem as one deterministic tarball: the image's single layer.

GNU tar does it (a well-kept tool for exactly this): entries sorted by name,
numeric owners kept as they are (never root-squashed: files owned by service
users stay theirs), modes including setuid bits, hard links, and file
capabilities (security.capability, as a PAX xattr record, which podman's
storage applies). The PAX headers carry no atime, ctime or process id, and
every time the install itself produced was already set to the ISO's date
(slim.settle_times), so the same root gives the same bytes.

The tar is never written to disk: it is read twice from the root (which the
page cache holds right after the install), once to learn its digest and size
(the image config names the digest), once streamed into podman. The second
pass must give the same digest, which checks the determinism on every build.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import NestcustomError

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Layer:
    root: Path
    digest: str  # sha256:... of the uncompressed tar (the image's diff_id)
    size: int


def _argv(root: Path) -> list[str]:
    return [
        proc.require("tar", "tar"),
        "--create",
        "--file",
        "-",
        "--directory",
        str(root),
        "--format=pax",
        "--sort=name",
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=security.capability",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
        "--no-acls",
        "--no-selinux",
        ".",
    ]


def _chunks(root: Path) -> Iterator[bytes]:
    tar = proc.stream(_argv(root))
    assert tar.stdout is not None and tar.stderr is not None
    try:
        while chunk := tar.stdout.read(_CHUNK):
            yield chunk
        code = tar.wait()
        if code != 0:
            stderr = tar.stderr.read().decode(errors="replace").strip()
            raise NestcustomError(f"tar of the image root failed (exit {code}): {stderr[-500:]}")
    finally:
        if tar.poll() is None:
            tar.kill()
            tar.wait()
        tar.stdout.close()
        tar.stderr.close()


def measure_layer(root: Path) -> Layer:
    """The layer's digest and size, without writing it anywhere."""
    digest = hashlib.sha256()
    size = 0
    for chunk in _chunks(root):
        digest.update(chunk)
        size += len(chunk)
    return Layer(root, "sha256:" + digest.hexdigest(), size)


def layer_chunks(layer: Layer) -> Iterator[bytes]:
    """The layer's bytes again; fails at the end if they differ from what was measured."""
    digest = hashlib.sha256()
    size = 0
    for chunk in _chunks(layer.root):
        digest.update(chunk)
        size += len(chunk)
        if size > layer.size:
            break
        yield chunk
    if size != layer.size or "sha256:" + digest.hexdigest() != layer.digest:
        raise NestcustomError(
            "the image root changed between two reads of it (the layer is not deterministic)",
            "is another process writing into the work directory?",
        )
