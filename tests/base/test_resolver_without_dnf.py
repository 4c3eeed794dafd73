"""`nestcustom base from-iso` on a host without Debian's python3-dnf: the Debian Python
packages are hidden under an empty tmpfs in a private mount namespace (this host has
them), and the real CLI, given a real ISO, says what to install and exits 1, without a
traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.base.isomaker import make_iso
from tests.gitops.rpms import Pkg, build_rpms

DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or not DIST_PACKAGES.is_dir(),
    reason="hiding python3-dnf needs root, unshare and Debian's dist-packages",
)


def test_without_python3_dnf_from_iso_says_what_to_install(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "Packages").mkdir(parents=True)
    build_rpms([Pkg("nc-a")], repo / "Packages", tmp_path / "rpmbuild")
    subprocess.run(["createrepo_c", "--quiet", str(repo)], check=True, capture_output=True)
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    iso = make_iso(tmp_path / "NewStart-test-dvd.iso", files)
    (tmp_path / "work").mkdir()
    hidden = f'mount -t tmpfs -o size=1m,ro tmpfs {DIST_PACKAGES} && exec "$@"'
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            hidden,
            "sh",
            sys.executable,
            "-m",
            "nestcustom",
            "base",
            "from-iso",
            str(iso),
            "--no-gpgcheck",
            "--no-cache",
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "error: dnf's Python module is not installed (needed to resolve packages)" in (
        done.stderr
    )
    assert "  hint: apt-get install python3-dnf, or run scripts/setup-host" in done.stderr
    assert "Traceback" not in done.stderr
    assert list((tmp_path / "work").iterdir()) == []  # its work directory is gone
