"""The universe's stand-in for a vendor's download site (https://downloads.example.com/).

recipes/nestos-downloads.yaml downloads from that site; the universe serves the
same files from tests/universe/download-site/ on 127.0.0.1, and builds use it
through `nestcustom build --download-mirror SITE=URL`, as a site without access
to the vendor would use its own mirror.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .rpmrepo import RpmRepo, serve_repo

SITE = "https://downloads.example.com/"
FILES = Path(__file__).resolve().parent / "download-site"


@contextmanager
def serve_download_site(root: Path = FILES) -> Iterator[str]:
    """Serve `root` over HTTP on 127.0.0.1; yields the base URL (ending in /)."""
    with serve_repo(RpmRepo(path=root, extra_path=root, packages={})) as url:
        yield url


def mirror_argument(url: str) -> str:
    """The --download-mirror value that reads SITE from `url`."""
    return f"{SITE}={url}"
