"""The base image's single layer: the same root gives the same bytes on any file system and
whatever names the build host gives its users; a root that changes while it is archived fails."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from nestcustom.base import tarball
from nestcustom.errors import NestcustomError

FILES = {
    "usr/bin/zz-last": b"z" * 5000,
    "usr/bin/aa-first": b"a" * 300,
    "usr/lib/mid/one": b"1",
    "etc/passwd": b"root:x:0:0::/root:/bin/sh\n",
    "etc/agent.conf": b"level=2\n",
    "var/lib/agent/state": b"",
}


def make_root(top: Path, order: list[str]) -> Path:
    """The same tree, its entries created in `order` (readdir order follows it on tmpfs,
    a hash on ext4), owned by root (named on every host) and by uid 4321."""
    top.mkdir(parents=True)
    for name in order:
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILES[name])
        os.utime(path, (1_700_000_000, 1_700_000_000))
        owner = 0 if name.startswith("etc/") else 4321  # root has a name on every host
        os.chown(path, owner, owner)
    for directory in sorted(
        {p for n in order for p in (top / n).parents if p != top.parent}, reverse=True
    ):
        os.utime(directory, (1_700_000_000, 1_700_000_000))
    return top


def layer_bytes(root: Path) -> bytes:
    return b"".join(tarball.layer_chunks(tarball.size_layer(root)))


@pytest.mark.skipif(os.geteuid() != 0, reason="owners other than oneself need root")
def test_the_same_root_gives_the_same_layer_on_two_file_systems(tmp_path: Path) -> None:
    names = list(FILES)
    on_disk = make_root(tmp_path / "disk" / "root", names)
    shm = Path("/dev/shm") / f"nctest-tar-{os.getpid()}"
    try:
        in_memory = make_root(shm / "root", list(reversed(names)))
        first, second = layer_bytes(on_disk), layer_bytes(in_memory)
    finally:
        import shutil

        shutil.rmtree(shm, ignore_errors=True)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    # sorted by name, not by readdir order
    assert [m.name for m in members] == sorted(m.name for m in members)
    # owners as numbers only: no user or group name of the build host
    files = [m for m in members if m.isfile()]
    assert {(m.uid, m.gid, m.uname, m.gname) for m in files} == {
        (4321, 4321, "", ""),
        (0, 0, "", ""),
    }


def test_a_root_that_shrinks_while_archived_fails(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr").mkdir(parents=True)
    (root / "usr" / "big").write_bytes(b"b" * 200_000)
    (root / "usr" / "small").write_bytes(b"s")
    layer = tarball.size_layer(root)
    (root / "usr" / "big").unlink()
    with pytest.raises(NestcustomError, match="changed while it was archived"):
        b"".join(tarball.layer_chunks(layer))
