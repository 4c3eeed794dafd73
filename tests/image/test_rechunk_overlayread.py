"""Reading layers in place from overlay storage: what overlay keeps turned back into what
the layer tar said (whiteout devices, opaque xattrs, hardlinks, kept xattrs), the config
taken only when its sha256 is the image ID, anything unexpected left to the export.
Made with real files, devices and xattrs (the tests run as root, as the build does)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from nestcustom.image.rechunk.overlayread import (
    base_index,
    layer_dirs,
    read_dir,
    read_stored,
    stored_config,
)

CAP = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"


def diff_dir(top: Path) -> Path:
    (top / "usr/bin").mkdir(parents=True)
    (top / "usr/bin/ping").write_bytes(b"elf")
    os.setxattr(top / "usr/bin/ping", "security.capability", CAP)
    os.setxattr(top / "usr/bin/ping", "user.note", b"kept")
    os.link(top / "usr/bin/ping", top / "usr/bin/ping6")
    (top / "usr/lib").mkdir()
    (top / "usr/lib/libx.so").symlink_to("libx.so.1")
    os.mknod(top / "usr/lib/gone", 0o600 | 0o020000, os.makedev(0, 0))  # overlay's whiteout
    (top / "etc/opaque").mkdir(parents=True)
    os.setxattr(top / "etc/opaque", "trusted.overlay.opaque", b"y")
    (top / "etc/opaque/new").write_text("new")
    os.mkfifo(top / "etc/pipe")
    for path in (top / "usr/bin/ping", top / "etc/opaque/new"):
        os.utime(path, (0, 0))
    return top


def test_a_layer_directory_reads_as_its_tar_said(tmp_path: Path) -> None:
    spool = io.BytesIO()
    members = {(m.path, m.kind): m for m in read_dir(diff_dir(tmp_path / "diff"), spool)}
    assert sorted(members) == [
        ("etc", "dir"), ("etc/opaque", "dir"), ("etc/opaque", "opaque"), ("etc/opaque/new", "file"),
        ("etc/pipe", "fifo"), ("usr", "dir"), ("usr/bin", "dir"), ("usr/bin/ping", "file"),
        ("usr/bin/ping6", "hardlink"), ("usr/lib", "dir"), ("usr/lib/gone", "whiteout"),
        ("usr/lib/libx.so", "symlink"),
    ]  # fmt: skip
    ping = members[("usr/bin/ping", "file")]
    assert ping.xattrs == (("security.capability", CAP), ("user.note", b"kept"))
    assert (ping.sha256, ping.mtime) == (hashlib.sha256(b"elf").hexdigest(), 0)
    assert ping.payload is not None
    assert spool.getvalue()[ping.payload.offset : ping.payload.offset + ping.payload.size] == b"elf"
    assert members[("usr/bin/ping6", "hardlink")].linkname == "usr/bin/ping"
    assert members[("usr/lib/libx.so", "symlink")].linkname == "libx.so.1"
    assert members[("etc/opaque", "opaque")].xattrs == ()  # overlay's own xattr is no content
    assert members[("etc/opaque", "dir")].xattrs == ()


def test_whiteouts_named_as_in_a_tar_count_too(tmp_path: Path) -> None:
    (tmp_path / "etc/d").mkdir(parents=True)
    (tmp_path / "etc/.wh.motd").write_bytes(b"")
    (tmp_path / "etc/d/.wh..wh..opq").write_bytes(b"")
    kinds = sorted((m.path, m.kind) for m in read_dir(tmp_path, io.BytesIO()))
    assert kinds == [
        ("etc", "dir"),
        ("etc/d", "dir"),
        ("etc/d", "opaque"),
        ("etc/motd", "whiteout"),
    ]


def graph(tmp_path: Path, layers: int, config: bytes) -> dict[str, Any]:
    """Inspect data of an image whose layers and config are laid out as c/storage does."""
    dirs = []
    for number in range(layers):
        where = tmp_path / "overlay" / f"layer{number}" / "diff"
        where.mkdir(parents=True)
        (where / f"file{number}").write_text(str(number))
        dirs.append(str(where))
    image_id = hashlib.sha256(config).hexdigest()
    store = tmp_path / "overlay-images" / image_id
    store.mkdir(parents=True)
    (store / ("=" + base64.b64encode(f"sha256:{image_id}".encode()).decode())).write_bytes(config)
    return {
        "Id": image_id,
        "RootFS": {"Layers": [f"sha256:{n:064x}" for n in range(layers)]},
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"UpperDir": dirs[-1], "LowerDir": ":".join(reversed(dirs[:-1]))},
        },
    }


def test_the_stored_image_reads_with_its_config_and_a_cached_base_index(tmp_path: Path) -> None:
    attrs = graph(tmp_path, 3, b'{"config":{}}')
    cache = tmp_path / "cache"
    found = read_stored(attrs, 2, [11, 22], io.BytesIO(), cache)
    assert found is not None
    assert [[m.path for m in layer] for layer in found.custom] == [["file2"]]
    assert (set(found.base.paths), found.base_sizes, found.config) == (
        {"file0", "file1"},
        (11, 22),
        b'{"config":{}}',
    )
    (cached,) = cache.iterdir()
    assert json.loads(cached.read_text())["paths"] == ["file0", "file1"]
    (tmp_path / "overlay/layer0/diff/file0").unlink()  # the cache answers, not the walk
    assert base_index(
        [tmp_path / "overlay/layer0/diff"], attrs["RootFS"]["Layers"][:2], cache
    ).paths == {"file0", "file1"}


@pytest.mark.parametrize("fault", ["driver", "count", "config", "metacopy", "sizes"])
def test_anything_unexpected_leaves_the_reading_to_the_export(tmp_path: Path, fault: str) -> None:
    attrs = graph(tmp_path, 3, b'{"config":{}}')
    sizes = [11, 22]
    if fault == "driver":
        attrs["GraphDriver"]["Name"] = "vfs"
    elif fault == "count":
        attrs["RootFS"]["Layers"].append("sha256:" + "f" * 64)
    elif fault == "config":
        next((tmp_path / "overlay-images").glob("*/=*")).write_bytes(b"{}")
    elif fault == "metacopy":
        os.setxattr(tmp_path / "overlay/layer2/diff/file2", "trusted.overlay.metacopy", b"")
    else:
        sizes = [11]
    assert read_stored(attrs, 2, sizes, io.BytesIO(), None) is None


def test_rootless_storage_is_left_to_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On disk a rootless container's root is the user's uid: owners read there are wrong.
    attrs = graph(tmp_path, 3, b'{"config":{}}')
    assert read_stored(attrs, 2, [11, 22], io.BytesIO(), None) is not None
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert read_stored(attrs, 2, [11, 22], io.BytesIO(), None) is None


def test_a_directory_that_cannot_be_listed_leaves_the_reading_to_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attrs = graph(tmp_path, 3, b'{"config":{}}')
    (tmp_path / "overlay/layer2/diff/sub").mkdir()
    (tmp_path / "overlay/layer2/diff/sub/file").write_bytes(b"x")
    listing = os.scandir

    def refused(path: object) -> object:
        if str(path).endswith("/sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", refused)
    assert read_stored(attrs, 2, [11, 22], io.BytesIO(), None) is None


def test_layer_dirs_and_config_follow_the_inspect_data(tmp_path: Path) -> None:
    attrs = graph(tmp_path, 2, b"{}")
    dirs = layer_dirs(attrs)
    assert dirs == [tmp_path / "overlay/layer0/diff", tmp_path / "overlay/layer1/diff"]
    assert stored_config(attrs, dirs[-1]) == b"{}"
    assert stored_config({**attrs, "Id": "0" * 64}, dirs[-1]) is None
