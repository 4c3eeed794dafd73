"""Reading a few files out of an image's layers (top down, streamed, stopping when settled),
over hand-made layer tars: replaced files, whiteouts, opaque directories, a directory
replaced by a link, gzip and plain tars, a broken layer."""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image.imagefiles import Layer, read_files

POLICY = "/etc/containers/policy.json"
REGISTRIES = "/etc/containers/registries.d"


def layer_tar(entries: dict[str, bytes | str | None], *, compress: bool = True) -> bytes:
    """A layer: path -> content (bytes: a file, str: a symlink to it, None: a directory)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, content in entries.items():
            info = tarfile.TarInfo(path)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return gzip.compress(out.getvalue()) if compress else out.getvalue()


class Image:
    """Layers given bottom first (as a Containerfile builds them); records which were read."""

    def __init__(self, *bottom_up: bytes) -> None:
        self.blobs = list(bottom_up)
        self.opened: list[int] = []  # layer numbers, 1 = bottom

    def layers(self) -> list[Layer]:
        def opener(number: int) -> Layer:
            @contextlib.contextmanager
            def open_layer() -> Iterator[BinaryIO]:
                self.opened.append(number)
                yield io.BytesIO(self.blobs[number - 1])

            return open_layer

        return [opener(n) for n in range(len(self.blobs), 0, -1)]


def test_a_file_in_the_top_layer_is_read_without_opening_the_others() -> None:
    image = Image(
        layer_tar({"etc/containers/policy.json": b"base"}),
        layer_tar({"usr/bin/tool": b"x"}),
        layer_tar({"./etc/containers/policy.json": b"recipe"}),
    )
    assert read_files(image.layers(), paths=[POLICY]) == {POLICY: b"recipe"}
    assert image.opened == [3]


def test_a_file_replaced_higher_up_is_the_higher_one() -> None:
    image = Image(
        layer_tar({"etc/containers/policy.json": b"base", "etc/pki/containers/k.asc": b"key"}),
        layer_tar({"etc/containers/policy.json": b"recipe"}),
    )
    found = read_files(image.layers(), paths=[POLICY, "/etc/pki/containers/k.asc"])
    assert found == {POLICY: b"recipe", "/etc/pki/containers/k.asc": b"key"}
    assert image.opened == [2, 1]


def test_a_whiteout_hides_the_file_below_and_ends_the_search() -> None:
    image = Image(
        layer_tar({"etc/containers/policy.json": b"base"}),
        layer_tar({"etc/containers/.wh.policy.json": b""}),
        layer_tar({"usr/share/doc": b"x"}),
    )
    assert read_files(image.layers(), paths=[POLICY]) == {}
    assert image.opened == [3, 2]  # the bottom layer's file is never looked at


def test_a_whited_out_file_put_back_higher_up_is_there() -> None:
    image = Image(
        layer_tar({"etc/containers/policy.json": b"base"}),
        layer_tar({"etc/containers/.wh.policy.json": b""}),
        layer_tar({"etc/containers/policy.json": b"again"}),
    )
    assert read_files(image.layers(), paths=[POLICY]) == {POLICY: b"again"}


def test_a_directory_gathers_its_files_from_every_layer_minus_the_whited_out() -> None:
    image = Image(
        layer_tar({"etc/containers/registries.d/default.yaml": b"d", f"{REGISTRIES[1:]}/old.yaml": b"o"}),
        layer_tar({f"{REGISTRIES[1:]}/.wh.old.yaml": b"", f"{REGISTRIES[1:]}/sub/deep.yaml": b"s"}),
        layer_tar({f"{REGISTRIES[1:]}/site.yaml": b"new", f"{REGISTRIES[1:]}/default.yaml": b"D"}),
    )  # fmt: skip
    assert read_files(image.layers(), directories=[REGISTRIES]) == {
        f"{REGISTRIES}/site.yaml": b"new",
        f"{REGISTRIES}/default.yaml": b"D",  # the higher one
    }  # sub/deep.yaml is not directly in the directory; old.yaml is whited out
    assert image.opened == [3, 2, 1]


def test_an_opaque_directory_hides_everything_below_it() -> None:
    image = Image(
        layer_tar({f"{REGISTRIES[1:]}/default.yaml": b"base", POLICY[1:]: b"base"}),
        layer_tar({f"{REGISTRIES[1:]}/.wh..wh..opq": b"", f"{REGISTRIES[1:]}/site.yaml": b"s"}),
        layer_tar({"usr/share/x": b"x"}),
    )
    found = read_files(image.layers(), directories=[REGISTRIES])
    assert found == {f"{REGISTRIES}/site.yaml": b"s"}
    assert image.opened == [3, 2]  # settled by the opaque marker: the base is not read


def test_a_link_where_a_parent_directory_was_hides_what_was_under_it() -> None:
    image = Image(
        layer_tar({POLICY[1:]: b"base"}),
        layer_tar({"etc/containers": "/usr/etc/containers"}),
    )
    assert read_files(image.layers(), paths=[POLICY]) == {}
    assert image.opened == [2]


def test_a_wanted_path_that_is_not_a_regular_file_is_absent() -> None:
    image = Image(layer_tar({POLICY[1:]: b"base"}), layer_tar({POLICY[1:]: "/elsewhere"}))
    assert read_files(image.layers(), paths=[POLICY]) == {}


def test_plain_tar_layers_are_read_too() -> None:
    image = Image(layer_tar({POLICY[1:]: b"plain"}, compress=False))
    assert read_files(image.layers(), paths=[POLICY]) == {POLICY: b"plain"}


def test_enough_stops_the_walk_early() -> None:
    image = Image(
        layer_tar({f"{REGISTRIES[1:]}/base.yaml": b"b"}),
        layer_tar({f"{REGISTRIES[1:]}/site.yaml": b"s"}),
    )
    found = read_files(
        image.layers(),
        directories=[REGISTRIES],
        enough=lambda files: f"{REGISTRIES}/site.yaml" in files,
    )
    assert found == {f"{REGISTRIES}/site.yaml": b"s"}
    assert image.opened == [2]


def test_a_broken_layer_is_a_located_error() -> None:
    image = Image(layer_tar({POLICY[1:]: b"base"}), b"\x1f\x8bnot gzip at all")
    with pytest.raises(NestcustomError, match=r"layer 2 of 2: not a readable tar layer"):
        read_files(image.layers(), paths=[POLICY])
