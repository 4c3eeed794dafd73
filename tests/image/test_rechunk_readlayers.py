"""Reading an image's layers from a docker-archive export, as podman writes it."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from nestcustom.image.rechunk.model import Member
from nestcustom.image.rechunk.readlayers import LayerReadError, index, parse_layer, read_export

CAP = b"\x01\x00\x00\x02\x00\x20\x00\x00\xff\x00\x00\x00"  # not UTF-8


def layer_tar(*entries: tuple[str, bytes, bytes | None]) -> bytes:
    """(name, type, content) -> an uncompressed layer tar (PAX, as c/storage writes)."""
    out = io.BytesIO()
    with tarfile.open(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for name, kind, content in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o4755 if name.endswith("suid") else 0o644
            info.uid, info.gid, info.mtime = 7, 8, 0
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                info.linkname = (content or b"").decode()
                content = None
            if name.endswith("ping"):
                info.pax_headers = {
                    "SCHILY.xattr.security.capability": CAP.decode("utf-8", "surrogateescape")
                }
            info.size = len(content or b"")
            tar.addfile(info, io.BytesIO(content) if content else None)
    return out.getvalue()


def export(
    layers: list[bytes], config: bytes = b'{"rootfs":{}}', ids: list[str] | None = None
) -> tuple[bytes, str, list[str]]:
    """A docker-archive: `<diff id>.tar` per layer, `<image id>.json`, a manifest."""
    out = io.BytesIO()
    ids = ids or ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    image = hashlib.sha256(config).hexdigest()
    with tarfile.open(fileobj=out, mode="w") as tar:
        members = [(f"{d[7:]}.tar", data) for d, data in zip(ids, layers, strict=True)]
        members += [
            (f"{image}.json", config),
            ("manifest.json", json.dumps([{"Config": f"{image}.json"}]).encode()),
        ]
        for name, data in reversed(members):  # the order of an export is not the layers'
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue(), image, ids


def test_members_keep_what_a_host_needs_and_files_go_to_the_spool() -> None:
    spool = io.BytesIO()
    data = layer_tar(
        ("./usr/", tarfile.DIRTYPE, None),
        ("./usr/bin/ping", tarfile.REGTYPE, b"elf"),
        ("usr/bin/suid", tarfile.REGTYPE, b"x"),
        ("usr/bin/p", tarfile.LNKTYPE, b"./usr/bin/ping"),
        ("usr/lib/libx.so", tarfile.SYMTYPE, b"libx.so.1"),
        ("etc/.wh.motd", tarfile.REGTYPE, b""),
        ("usr/share/doc/.wh..wh..opq", tarfile.REGTYPE, b""),
        ("./", tarfile.DIRTYPE, None),
    )
    members = {(m.path, m.kind): m for m in parse_layer(io.BytesIO(data), spool)}
    assert sorted(members) == [
        ("etc/motd", "whiteout"), ("usr", "dir"), ("usr/bin/p", "hardlink"), ("usr/bin/ping", "file"),
        ("usr/bin/suid", "file"), ("usr/lib/libx.so", "symlink"), ("usr/share/doc", "opaque"),
    ]  # fmt: skip
    ping = members[("usr/bin/ping", "file")]
    assert ping.xattrs == (("security.capability", CAP),)
    assert (ping.uid, ping.gid, ping.sha256) == (7, 8, hashlib.sha256(b"elf").hexdigest())
    assert ping.payload is not None
    assert spool.getvalue()[ping.payload.offset : ping.payload.offset + ping.payload.size] == b"elf"
    assert members[("usr/bin/suid", "file")].mode == 0o4755
    assert members[("usr/bin/p", "hardlink")].linkname == "usr/bin/ping"
    assert members[("usr/lib/libx.so", "symlink")].linkname == "libx.so.1"


def test_a_name_that_climbs_out_of_the_image_is_refused() -> None:
    with pytest.raises(LayerReadError, match=r"'usr/../../etc/shadow', outside the image"):
        parse_layer(
            io.BytesIO(layer_tar(("usr/../../etc/shadow", tarfile.REGTYPE, b"x"))), io.BytesIO()
        )


def test_the_export_gives_custom_members_the_base_index_and_sizes() -> None:
    base = layer_tar(("usr", tarfile.DIRTYPE, None), ("usr/lib", tarfile.DIRTYPE, None),
                     ("lib", tarfile.SYMTYPE, b"usr/lib"), ("etc", tarfile.DIRTYPE, None), ("etc/motd", tarfile.REGTYPE, b"hi"))  # fmt: skip
    custom = layer_tar(
        ("etc/.wh.motd", tarfile.REGTYPE, b""), ("usr/lib/new", tarfile.REGTYPE, b"new")
    )
    archive, image, ids = export([base, custom])
    spool = io.BytesIO()
    got = read_export(io.BytesIO(archive), image, ids, 1, spool)
    assert [[(m.path, m.kind) for m in layer] for layer in got.custom] == [
        [("etc/motd", "whiteout"), ("usr/lib/new", "file")]
    ]
    assert got.base.paths == {"usr", "usr/lib", "lib", "etc", "etc/motd"}
    assert got.base.dirs == {"usr", "usr/lib", "etc"}
    assert got.base.symlinks == (("lib", "usr/lib"),)
    assert got.base_sizes == (len(base),)
    assert got.config == b'{"rootfs":{}}'
    assert spool.getvalue() == b"new"  # base files are not spooled


def test_a_layer_that_reads_back_other_than_its_diff_id_is_refused() -> None:
    layer = layer_tar(("a", tarfile.REGTYPE, b"1"))
    forged = "sha256:" + "0" * 64
    archive, image, _ = export([layer], ids=[forged])
    real = "sha256:" + hashlib.sha256(layer).hexdigest()
    with pytest.raises(LayerReadError, match=f"layer {forged} reads back as {real}"):
        read_export(io.BytesIO(archive), image, [forged], 0, io.BytesIO())


def test_a_missing_layer_or_config_is_named() -> None:
    archive, image, ids = export([layer_tar(("a", tarfile.REGTYPE, b"1"))])
    other = "sha256:" + "1" * 64
    with pytest.raises(LayerReadError, match=f"lacks layer\\(s\\) {other}"):
        read_export(io.BytesIO(archive), image, [*ids, other], 0, io.BytesIO())
    with pytest.raises(LayerReadError, match="lacks the config of 2222"):
        read_export(io.BytesIO(archive), "2" * 64, ids, 0, io.BytesIO())


@pytest.mark.parametrize("where", [b"\x00", b"1" * 100, b"2" * 100], ids=["header", "file", "last"])
def test_an_export_cut_short_is_refused_as_such(where: bytes) -> None:
    layer = layer_tar(("a", tarfile.REGTYPE, b"1" * 5000), ("b", tarfile.REGTYPE, b"2" * 5000))
    archive, image, ids = export([layer])
    cut = archive[: archive.index(where, 512) + len(where)]  # in a header, in a file's bytes
    with pytest.raises(LayerReadError, match=f"export of {image[:12]} is not whole"):
        read_export(io.BytesIO(cut), image, ids, 0, io.BytesIO())


def test_the_base_index_applies_whiteouts_and_replacements_in_order() -> None:
    def m(path: str, kind: str, linkname: str = "") -> Member:
        return Member(path=path, kind=kind, mode=0o755, uid=0, gid=0, mtime=0, linkname=linkname)  # type: ignore[arg-type]

    found = index(
        [
            [
                m("a", "dir"),
                m("a/x", "file"),
                m("b", "dir"),
                m("b/y", "file"),
                m("c", "symlink", "a"),
            ],
            [
                m("a", "whiteout"),
                m("b", "opaque"),
                m("b", "dir"),
                m("c", "dir"),
                m("d", "dir"),
                m("d/z", "file"),
            ],
            [m("d", "symlink", "b")],
        ]
    )
    assert (set(found.paths), set(found.dirs), found.symlinks) == (
        {"b", "c", "d"},
        {"b", "c"},
        (("d", "b"),),
    )
