"""Scratch space: where the extracted packages and the bootstrap live, and how trees go away.

The packages copied out of the ISO, the bootstrap and the image root are all
thrown away once the image is in podman's storage; writing them to disk only
to delete them doubles the disk traffic of a build (and deleting a freshly
written root waits for its writeback). When the machine's shared memory
(/dev/shm, a tmpfs) has room to spare, they are staged there; otherwise, or
when the user names a --workdir, in the work directory. Trees are removed with `rm -rf --one-file-system`: fast,
and it never follows a mount point out of the tree.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nestcustom import proc
from nestcustom.base.resolve import Plan
from nestcustom.errors import NestcustomError

SHM = Path("/dev/shm")  # noqa: S108 - only ever used through mkdtemp (0700, unique)
_HEADROOM = 1024 * 1024 * 1024  # leave the rest of the machine this much shared memory


def _available_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def in_memory(needed: int) -> bool:
    """Whether `needed` bytes fit in /dev/shm with room to spare for everything else."""
    if not SHM.is_dir():
        return False
    try:
        free = shutil.disk_usage(SHM).free
    except OSError:
        return False
    return free > 2 * needed + _HEADROOM and _available_memory() > 2 * needed + _HEADROOM


@contextlib.contextmanager
def staged(work: Path, memory: bool) -> Iterator[Path]:
    """A scratch directory: in /dev/shm when `memory`, else under work; removed at the end."""
    if memory:
        path = Path(tempfile.mkdtemp(prefix="nestcustom-base-stage-", dir=SHM))
    else:
        path = work / "stage"
        path.mkdir()
    try:
        yield path
    finally:
        remove_tree(path)


def remove_tree(path: Path) -> None:
    """Remove a tree that may hold a root filesystem (any owner, mode or attribute)."""
    if path.exists() or path.is_symlink():
        proc.run(["rm", "-rf", "--one-file-system", "--", str(path)], timeout=3600)


def scratch_bytes(plan: Plan) -> int:
    """Bytes of the extracted packages and the unpacked bootstrap (the root comes on top)."""
    unique = {p.path: p for p in (*plan.packages, *plan.bootstrap)}.values()
    return sum(p.size for p in unique) + sum(p.install_size for p in plan.bootstrap)


def check_space(work: Path, plan: Plan, scratch: int) -> None:
    """Refuse early when the work directory cannot hold what will be written there."""
    needed = scratch
    free = shutil.disk_usage(work).free
    if free < needed:
        raise NestcustomError(
            f"not enough space in the work directory {work.parent}: {free / 1e6:.0f} MB free, "
            f"about {needed / 1e6:.0f} MB needed (no space left for the packages and the root)",
            "free space there or pass --workdir on a larger file system",
        )


def remove_work(work: Path) -> None:
    """Remove the work tree; retried briefly while killed scriptlets are still exiting."""
    for attempt in range(20):
        try:
            remove_tree(work)
            work.mkdir()  # TemporaryDirectory wants to remove it itself
            return
        except (OSError, proc.CommandError):  # rm -rf's failure is a CommandError
            if attempt == 19:
                raise
            time.sleep(0.25)
