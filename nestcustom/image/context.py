"""Build contexts: exactly the files a Containerfile reads, as a tar that depends on content only."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass


@dataclass(frozen=True)
class ContextFile:
    """A file of the build context: its path in the context and its bytes."""

    path: str
    content: bytes
    mode: int = 0o644
    kind: str = "file"  # file | dir | link (a directory tree copied whole keeps all three)
    target: str = ""  # what a link points to


def build_context(files: list[ContextFile]) -> bytes:
    """A tar of exactly the files a Containerfile uses, with fixed metadata.

    Fixed mtimes and owners make the context, and so podman's COPY cache keys,
    depend on content only.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(item.path)
            info.mode = item.mode
            info.mtime = 0
            info.uid = info.gid = 0
            if item.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif item.kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = item.target
                tar.addfile(info)
            else:
                info.size = len(item.content)
                tar.addfile(info, io.BytesIO(item.content))
    return buffer.getvalue()
