"""The root filesystem as one deterministic tarball: the image's single layer.

GNU tar does it (a well-kept tool for exactly this): entries sorted by name,
numeric owners kept as they are (never root-squashed: files owned by service
users stay theirs), modes including setuid bits, hard links, and file
capabilities (security.capability, as a PAX xattr record, which podman's
storage applies). The PAX headers carry no atime, ctime or process id, and
every time the install itself produced was already set to the ISO's date
(slim.settle_times), so the same root gives the same bytes.

The tar is never written to disk and the root's contents are read once: a
sizing run first (tar writing to /dev/null reads no file data, only metadata;
GNU tar documents this for backup tools' sizing passes) gives the size the
archive's header needs, then the one real run streams into podman. The
stream must come to exactly that size, which catches a root that changed in
between.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import NestcustomError

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Layer:
    root: Path
    size: int  # bytes of the uncompressed tar


def _argv(root: Path, archive: str) -> list[str]:
    return [
        proc.require("tar", "tar"),
        "--create",
        "--file",
        archive,
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


def size_layer(root: Path) -> Layer:
    """The layer's size in bytes, from file metadata only (no file is read)."""
    try:
        done = proc.run([*_argv(root, "/dev/null"), "--totals"], timeout=1800)
    except proc.CommandError as exc:
        raise NestcustomError(f"tar of the image root failed: {exc.message}") from exc
    # "Total bytes written: 259143680 (248MiB, ...)"; the words follow the locale, the
    # number is the first on the line in every one of them.
    lines = done.stderr.strip().splitlines()
    count = re.search(r"\d+", lines[-1]) if lines else None
    if not count:
        raise NestcustomError(f"tar did not report the layer's size: {done.stderr.strip()[-300:]}")
    return Layer(root, int(count[0]))


def layer_chunks(layer: Layer) -> Iterator[bytes]:
    """The layer's bytes, as tar writes them; fails if they do not come to layer.size."""
    tar = proc.stream(_argv(layer.root, "-"))
    assert tar.stdout is not None and tar.stderr is not None
    size = 0
    try:
        while chunk := tar.stdout.read(_CHUNK):
            size += len(chunk)
            if size > layer.size:
                break
            yield chunk
        else:
            code = tar.wait()
            if code != 0:
                stderr = tar.stderr.read().decode(errors="replace").strip()
                raise NestcustomError(
                    f"tar of the image root failed (exit {code}): {stderr[-500:]}"
                )
        if size != layer.size:
            raise NestcustomError(
                f"the image root changed while it was archived ({size} bytes, not {layer.size})",
                "is another process writing into the work directory?",
            )
    finally:
        if tar.poll() is None:
            tar.kill()
            tar.wait()
        tar.stdout.close()
        tar.stderr.close()
