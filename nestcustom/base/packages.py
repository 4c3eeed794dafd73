"""Copy only the RPMs the plan needs out of the ISO, each checked against the repository's checksum.

A DVD holds thousands of packages; an image needs a few hundred. Each one is
copied once (the image's and the bootstrap's sets overlap) and its checksum
compared with the one in the repository metadata, so a damaged package is
named before it reaches rpm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

from nestcustom.base.isofile import IsoReader
from nestcustom.base.resolve import Package
from nestcustom.errors import BadInputError

_ALGORITHMS = {"sha256", "sha1", "sha512", "sha384", "md5"}


def _digest(path: Path, kind: str) -> str:
    digest = hashlib.new(kind)
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def extract_packages(
    reader: IsoReader,
    packages: Iterable[Package],
    dest: Path,
    on_progress: Callable[[int, int, str], None] = lambda done, total, name: None,
) -> int:
    """Copy each package to dest/<its path on the ISO>; returns the bytes copied."""
    unique = {p.path: p for p in packages}
    # A location is the repository's word: one that climbs out (`..`, or absolute) would
    # write outside the work directory, whatever the ISO holds there.
    outside = sorted(p for p in unique if p.startswith("/") or ".." in p.split("/"))
    if outside:
        raise BadInputError(
            f"{len(outside)} package location(s) in the repository metadata point outside the "
            f"repository: {', '.join(outside[:5])}",
            "is the ISO what the vendor published?",
        )
    total = len(unique)
    copied = 0
    bad: list[str] = []
    for index, (path, package) in enumerate(sorted(unique.items()), start=1):
        target = dest / path
        written = reader.extract("/" + path, target)
        copied += written
        if package.checksum_type in _ALGORITHMS:
            actual = _digest(target, package.checksum_type)
            if actual != package.checksum:
                bad.append(
                    f"{path}: {package.checksum_type} {actual[:16]}..., the repository says {package.checksum[:16]}..."
                )
        elif written != package.size:
            bad.append(f"{path}: {written} bytes, the repository says {package.size}")
        on_progress(index, total, package.name)
    if bad:
        raise BadInputError(
            f"{len(bad)} package(s) on the ISO are damaged (checksum mismatch):\n  "
            + "\n  ".join(bad[:10]),
            "download the ISO again and compare its checksum with the vendor's",
        )
    return copied
