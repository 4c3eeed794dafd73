"""The work directory: refused early when too small, and removed even when the first try fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from nestcustom.base import staging
from nestcustom.base.resolve import Plan
from nestcustom.errors import NestcustomError


def test_a_work_directory_too_small_is_refused_with_both_sizes(tmp_path: Path) -> None:
    work = tmp_path / "nestcustom-base-x"
    work.mkdir()
    free = shutil.disk_usage(work).free
    needed = free + 5_000_000_000
    with pytest.raises(NestcustomError) as caught:
        staging.check_space(work, Plan((), ()), needed)
    assert caught.value.message == (
        f"not enough space in the work directory {tmp_path}: {free / 1e6:.0f} MB free, "
        f"about {needed / 1e6:.0f} MB needed (no space left for the packages and the root)"
    )
    assert "--workdir" in str(caught.value.hint)


def test_a_work_directory_with_room_is_accepted(tmp_path: Path) -> None:
    staging.check_space(tmp_path, Plan((), ()), 1_000_000)


def test_removing_the_work_tree_retries_a_failure_instead_of_giving_up(tmp_path: Path) -> None:
    """The first attempts fail (the directory cannot be made again: its parent is not there
    yet); a later one succeeds, and the work tree is empty again."""
    parent = tmp_path / "later"
    work = parent / "work"
    appear = threading.Timer(0.3, parent.mkdir)
    appear.start()
    try:
        staging.remove_work(work)
    finally:
        appear.join()
    assert work.is_dir() and not any(work.iterdir())


def test_removing_the_work_tree_removes_what_the_build_left(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "stage/bootstrap/usr/bin").mkdir(parents=True)
    (work / "stage/bootstrap/usr/bin/rpm").write_bytes(b"\x7fELF")
    staging.remove_work(work)
    assert work.is_dir() and not any(work.iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: root")
def test_a_tree_rm_cannot_remove_yet_is_tried_again_until_it_can(tmp_path: Path) -> None:
    """A file system still mounted inside the tree (a killed scriptlet's, about to go) makes
    `rm -rf --one-file-system` fail; once it is unmounted the next try removes the tree."""
    work = tmp_path / "work"
    busy = work / "root" / "proc"
    busy.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(busy)], check=True)
    release = threading.Timer(0.6, subprocess.run, (["umount", str(busy)],), {"check": True})
    release.start()
    try:
        staging.remove_work(work)
    finally:
        release.join()
        subprocess.run(["umount", str(busy)], capture_output=True, check=False)
    assert work.is_dir() and not any(work.iterdir())
