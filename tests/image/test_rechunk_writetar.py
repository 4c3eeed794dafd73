"""A chunk's layer tar: fixed bytes for fixed members, whatever their order, and a tar that
Python's tarfile and GNU tar read back as exactly the members given.

TREE holds every kind of entry and every header feature a layer of ours carries.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nestcustom.image.rechunk.model import Member, Payload
from nestcustom.image.rechunk.writetar import COPY_BLOCK, WrittenTar, write_chunk

T = 1_700_000_000
# vfs_cap_data revision 2 (cap_net_raw and more): 0xff bytes are not UTF-8, 0x00 bytes inside.
CAP = bytes.fromhex("01000002ffffffff00000000ff01000000000000")
LONG = "usr/share/" + "d" * 60  # with its file: 131 characters, past ustar's 100
LATIN1 = "usr/share/caf\udce9"  # the byte 0xe9 as surrogateescape reads it
GZ = b"gzip binary\n" * 3
NOISE = (("user.from", b"the whiteout's source header"),)


class Spool:
    """Members with their contents in one spool, as the layer reader leaves them."""

    def __init__(self) -> None:
        self.data = bytearray()

    def file(self, path: str, data: bytes, mode: int = 0o644, **more: object) -> Member:
        payload = Payload(len(self.data), len(data))
        self.data += data
        return Member(path, "file", mode, 0, 0, T, payload=payload, **more)  # type: ignore[arg-type]

    def link(self, path: str, first: Member) -> Member:
        """Another name of `first` (same inode, same payload), as squash gives it."""
        return Member(path, "file", first.mode, first.uid, first.gid, first.mtime,
                      payload=first.payload, inode=first.inode)  # fmt: skip


def node(path: str, kind: str, mode: int = 0o755, **more: object) -> Member:
    return Member(path, kind, mode, 0, 0, T, **more)  # type: ignore[arg-type]


def make_tree() -> tuple[list[Member], bytes]:
    s = Spool()
    gunzip = s.file("usr/bin/gunzip", GZ, mode=0o755, inode="gz")
    xy = s.file("usr/bin/x/y", b"x and y\n", inode="xy")
    members = [
        node("etc", "dir"),
        s.file("etc/motd", b"hello\n", xattrs=(("user.note", b"kept \xc3\xa9"),)),
        node("etc/removed", "whiteout", mode=0, xattrs=NOISE),  # markers carry none
        node("opt", "dir"),
        node("opt/app", "dir", mode=0o750),
        node("opt/app", "opaque", mode=0o750, xattrs=NOISE),
        s.file("opt/app/.hidden", b"sorts before the marker\n"),
        s.file("opt/app/new", b"new\n"),
        node("run", "dir", mode=0o1777),
        node("run/pipe", "fifo", mode=0o600),
        node("usr", "dir"),
        node("usr/bin", "dir"),
        gunzip,
        s.link("usr/bin/gzip", gunzip),
        s.link("sysroot/ostree/repo/objects/aa/bb.file", gunzip),
        s.file(
            "usr/bin/ping",
            b"\x7fELF ping\n",
            mode=0o4755,
            xattrs=(("user.z", b"z"), ("security.capability", CAP)),  # not in order: sorted
        ),
        node("usr/bin/sh", "symlink", mode=0o777, linkname="bash"),
        node("usr/bin/x", "dir"),
        xy,
        s.link("usr/bin/x.y", xy),  # "x.y" < "x/y" as strings, but x/ holds x/y: x/y is first
        node("usr/lib", "dir"),
        node("usr/lib/null", "char", mode=0o666, devmajor=1, devminor=3),
        node("usr/share", "dir", mode=0o2775),
        node(LONG, "dir"),
        s.file(LONG + "/" + "f" * 60, b"long\n"),
        s.file(LATIN1, b"latin-1 name\n"),
        Member("usr/share/owned", "file", 0o640, 3_000_000, 1000, 0),  # id past ustar's 8**7
    ]
    return members, bytes(s.data)


# Names in the tar, in order, as GNU tar lists them (directories end in "/").
ORDER = [
    ("etc/", ""), ("etc/.wh.removed", ""), ("etc/motd", ""),
    ("opt/", ""), ("opt/app/", ""), ("opt/app/.wh..wh..opq", ""),
    ("opt/app/.hidden", ""), ("opt/app/new", ""),
    ("run/", ""), ("run/pipe", ""),
    ("usr/", ""), ("usr/bin/", ""), ("usr/bin/gunzip", ""),
    ("sysroot/ostree/repo/objects/aa/bb.file", "usr/bin/gunzip"),
    ("usr/bin/gzip", "usr/bin/gunzip"),
    ("usr/bin/ping", ""), ("usr/bin/sh", "bash"),
    ("usr/bin/x/", ""), ("usr/bin/x/y", ""), ("usr/bin/x.y", "usr/bin/x/y"),
    ("usr/lib/", ""), ("usr/lib/null", ""),
    ("usr/share/", ""), (LATIN1, ""), (LONG + "/", ""), (LONG + "/" + "f" * 60, ""),
    ("usr/share/owned", ""),
]  # fmt: skip

# The tripwire: these bytes are what every chunk of this tree has been, and hosts and
# registries cache chunks by them. If a writer change or a Python upgrade (tarfile) changes
# them, every image's chunks change once: bump the rechunk format, say so in the release
# notes, then update this digest. Never update it just to make the test pass. (The same
# digest came out of CPython 3.10.13, 3.11.7, 3.12.1 and 3.13.0 on 2026-12-07.)
GOLDEN = "sha256:900877befbada19ef4db24139e86b5b9d67eb9edfbc6522a50f0d96b0d62fef2"


def write(members: list[Member], spool: bytes) -> tuple[WrittenTar, bytes]:
    out = io.BytesIO()
    written = write_chunk(members, io.BytesIO(spool), out)
    return written, out.getvalue()


def test_a_fixed_tree_gives_fixed_bytes() -> None:
    written, _ = write(*make_tree())
    assert (written.diff_id, written.size) == (GOLDEN, 30720)


def test_the_size_and_diff_id_are_those_of_the_bytes_written() -> None:
    written, data = write(*make_tree())
    assert written == WrittenTar(f"sha256:{hashlib.sha256(data).hexdigest()}", len(data))
    assert len(data) % tarfile.RECORDSIZE == 0
    assert data.endswith(bytes(2 * tarfile.BLOCKSIZE))


@settings(max_examples=25, deadline=None)
@given(st.permutations(make_tree()[0]))
def test_the_order_members_come_in_does_not_change_a_byte(members: list[Member]) -> None:
    assert write(members, make_tree()[1]) == write(*make_tree())


def test_tarfile_reads_back_every_member_as_given() -> None:
    members, spool = make_tree()
    _, data = write(members, spool)
    given_by_name = {m.path: m for m in members if m.kind not in ("whiteout", "opaque")}
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape") as tar:
        read = tar.getmembers()
        assert [(m.name, m.linkname if m.issym() or m.islnk() else "") for m in read] == [
            (name.rstrip("/"), link) for name, link in ORDER
        ]
        for index, entry in enumerate(read):
            if entry.islnk():
                earlier = [m.name for m in read[:index]]
                assert entry.linkname in earlier, f"{entry.name}: links forward"
            if ".wh." in entry.name:
                assert entry.isreg() and entry.size == 0 and not entry.pax_headers
                continue
            member = given_by_name[entry.name]
            assert (entry.mode, entry.uid, entry.gid, entry.mtime) == (
                member.mode, member.uid, member.gid, member.mtime,
            ), entry.name  # fmt: skip
            assert (entry.uname, entry.gname) == ("", "")
            assert xattrs_of(entry) == dict(member.xattrs), entry.name
            assert "atime" not in entry.pax_headers and "ctime" not in entry.pax_headers
            kind = {"file": entry.isreg() or entry.islnk(), "dir": entry.isdir(),
                    "symlink": entry.issym(), "char": entry.ischr(), "fifo": entry.isfifo()}  # fmt: skip
            assert kind[member.kind], entry.name
            if entry.ischr():
                assert (entry.devmajor, entry.devminor) == (member.devmajor, member.devminor)
            if entry.isreg():
                content = tar.extractfile(entry)
                assert content is not None
                payload = member.payload
                expected = spool[payload.offset : payload.offset + payload.size] if payload else b""
                assert content.read() == expected, entry.name
    # Markers have a fixed header, whatever the member said (overlay gives whiteouts the
    # time podman made them).
    whiteout = next(m for m in read if m.name == "etc/.wh.removed")
    assert (whiteout.mode, whiteout.uid, whiteout.gid, whiteout.mtime) == (0, 0, 0, 0)
    opaque = [m.name for m in read].index("opt/app/.wh..wh..opq")
    assert read[opaque - 1].name == "opt/app" and read[opaque - 1].isdir()
    assert (read[opaque].mode, read[opaque].uid, read[opaque].mtime) == (0, 0, 0)


def xattrs_of(entry: tarfile.TarInfo) -> dict[str, bytes]:
    prefix = "SCHILY.xattr."
    return {
        key[len(prefix) :]: value.encode("utf-8", "surrogateescape")
        for key, value in entry.pax_headers.items()
        if key.startswith(prefix)
    }


def test_gnu_tar_lists_and_extracts_the_tree(tmp_path: Path) -> None:
    members, spool = make_tree()
    _, data = write(members, spool)
    archive = tmp_path / "chunk.tar"
    archive.write_bytes(data)
    listed = subprocess.run(
        ["tar", "--quoting-style=literal", "-tf", str(archive)], capture_output=True, check=True
    )
    names = listed.stdout.decode("utf-8", "surrogateescape").splitlines()
    assert names == [name for name, _ in ORDER]
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "-xpf", str(archive), "-C", str(root)],
        check=True,
    )
    assert (root / "etc/motd").read_bytes() == b"hello\n"
    assert os.getxattr(root / "etc/motd", "user.note") == b"kept \xc3\xa9"
    ping = root / "usr/bin/ping"
    assert stat.S_IMODE(ping.stat().st_mode) == 0o4755
    assert os.getxattr(ping, "security.capability") == CAP
    assert os.readlink(root / "usr/bin/sh") == "bash"
    names_of_gz = ["usr/bin/gunzip", "usr/bin/gzip", "sysroot/ostree/repo/objects/aa/bb.file"]
    inodes = {(root / name).stat().st_ino for name in names_of_gz}
    assert len(inodes) == 1 and (root / "usr/bin/gzip").read_bytes() == GZ
    assert (root / "usr/bin/x.y").stat().st_ino == (root / "usr/bin/x/y").stat().st_ino
    null = (root / "usr/lib/null").stat()
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_ISFIFO((root / "run/pipe").stat().st_mode)
    assert stat.S_IMODE((root / "run").stat().st_mode) == 0o1777
    assert (root / LONG / ("f" * 60)).read_bytes() == b"long\n"
    assert (root / os.fsencode(LATIN1).decode("utf-8", "surrogateescape")).exists()
    assert os.fsencode(root / LATIN1).endswith(b"caf\xe9")
    assert (root / "usr/share/owned").stat().st_uid == 3_000_000
    assert (root / "opt/app/.wh..wh..opq").stat().st_size == 0
    assert (root / "etc/motd").stat().st_mtime == T


class ReadRecorder(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.largest = max(self.largest, len(block := super().read(size)))
        return block


class WriteOnly:
    """A pipe: no seek, no tell, no read."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def test_a_large_file_is_copied_in_bounded_blocks_to_a_stream() -> None:
    content = bytes(range(256)) * (3 * COPY_BLOCK // 256 + 7)
    spool = ReadRecorder(b"lead" + content)
    out = WriteOnly()
    member = Member("big", "file", 0o644, 0, 0, 0, payload=Payload(4, len(content)))
    written = write_chunk([member], spool, out)  # type: ignore[arg-type]
    data = b"".join(out.chunks)
    assert 0 < spool.largest <= COPY_BLOCK
    assert written.diff_id == f"sha256:{hashlib.sha256(data).hexdigest()}"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        extracted = tar.extractfile("big")
        assert extracted is not None and extracted.read() == content


def test_an_opaque_marker_without_its_directory_is_refused() -> None:
    members = [node("opt", "dir"), node("opt/app", "opaque")]
    with pytest.raises(ValueError, match="opt/app: opaque marker without"):
        write(members, b"")


def test_a_hardlink_member_is_refused_naming_it() -> None:
    members = [node("usr", "dir"), node("usr/a", "hardlink", linkname="usr/b")]
    with pytest.raises(ValueError, match="usr/a: cannot write a 'hardlink' member"):
        write(members, b"")


def test_a_payload_the_spool_cannot_supply_is_refused_naming_the_file() -> None:
    member = Member("etc/big", "file", 0o644, 0, 0, 0, payload=Payload(2, 10))
    with pytest.raises(ValueError, match=r"etc/big: the spool holds 6 of its 10 bytes"):
        write([member], b"12345678")


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([node("etc", "dir"), node("etc", "dir", mode=0o700)], "etc: given twice"),
        ([node("etc/x", "symlink", linkname="y", inode="i")], "etc/x: a symlink cannot share"),
    ],
)
def test_members_one_tar_cannot_hold_are_refused(members: list[Member], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write(members, b"")
