"""The universe's NewStart mirror: the DVD's repositories served over HTTP, and a base that uses them.

A NewStart host's repositories point at the vendor's mirror of the DVD; here
the ISO's tree (extracted once with xorriso, cached by the ISO's name, which
carries its content hash) is served on 127.0.0.1, and the base image built by
`nestcustom base from-iso` gets a .repo file pointing there, as the NestOS
fixture base's mirror does (session.publish_mirror).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..rpmrepo import RpmRepo, serve_repo
from .build import CACHE, Iso


def extracted_tree(iso: Iso) -> Path:
    tree = CACHE / f"tree-{iso.path.stem}"
    if (tree / ".treeinfo").is_file():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso.path), "-extract", "/", str(tree)],
        check=True,
        capture_output=True,
    )
    return tree


@contextmanager
def serve_iso(iso: Iso) -> Iterator[str]:
    """Serve the ISO's tree over HTTP; yields the base URL (ending in /)."""
    tree = extracted_tree(iso)
    with serve_repo(RpmRepo(path=tree, extra_path=tree, packages={})) as url:
        yield url


def repo_file(url: str) -> str:
    return "".join(
        f"[newstart-{variant.lower()}]\nname=NewStart CGS Linux 6.06 {variant} (local mirror)\n"
        f"baseurl={url}{variant}/\nenabled=1\ngpgcheck=1\n"
        "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-newstart\nmetadata_expire=0\n\n"
        for variant in ("BaseOS", "AppStream")
    )


def publish_mirror(base: str, url: str, mirror: str) -> None:
    """Push `base` with its repositories pointing at `url` as `mirror`."""
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        (context / "newstart.repo").write_text(repo_file(url))
        (context / "Containerfile").write_text(
            f"FROM {base}\nCOPY newstart.repo /etc/yum.repos.d/newstart.repo\n"
        )
        for argv in (
            ["podman", "build", "-q", "--tls-verify=false", "-t", mirror, str(context)],
            ["podman", "push", "-q", "--tls-verify=false", mirror],
        ):
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
