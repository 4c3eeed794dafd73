"""Berkeley DB btree pages made by hand: internal items, overflow references, and the
pages this module must leave alone because it does not understand them."""

from __future__ import annotations

import struct
from pathlib import Path

from nestcustom.base import bdbpages
from tests.base.test_rpmdb_units import EPOCH, PAGE, meta_page, page_header


def _normalized(tmp_path: Path, page: bytearray) -> tuple[int, bytes]:
    """(pages changed, the page after) for a database of a metadata page and `page`."""
    path = tmp_path / "Index"
    path.write_bytes(bytes(meta_page(bytes(20), 1) + page))
    changed = bdbpages.normalize(path, EPOCH)
    return changed, path.read_bytes()[PAGE:]


def test_an_internal_item_keeps_its_page_number_and_loses_its_unused_byte(
    tmp_path: Path,
) -> None:
    """BINTERNAL: len, type, unused, pgno, nrecs, data[len]; padded to four bytes."""
    page = page_header(5, bdbpages.P_IBTREE, entries=1, high=PAGE - 16)
    item = struct.pack("<HBBII", 2, bdbpages.B_KEYDATA, 0xEE, 0x01020304, 7) + b"ab"
    struct.pack_into("<H", page, 26, PAGE - 16)
    page[PAGE - 16 : PAGE - 2] = item  # the last two bytes stay garbage: padding
    changed, after = _normalized(tmp_path, page)
    assert changed == 2
    assert after[:28] == page[:28]
    assert after[28 : PAGE - 16] == bytes(PAGE - 44)
    assert after[PAGE - 16 :] == struct.pack("<HBBII", 2, 1, 0, 0x01020304, 7) + b"ab" + bytes(2)


def test_an_internal_item_that_fills_the_page_to_its_end_is_understood(tmp_path: Path) -> None:
    page = page_header(5, bdbpages.P_IBTREE, entries=1, high=PAGE - 15)
    struct.pack_into("<H", page, 26, PAGE - 15)
    page[PAGE - 15 :] = struct.pack("<HBBII", 3, 1, 0xEE, 9, 1) + b"xyz"
    changed, after = _normalized(tmp_path, page)
    assert changed == 2
    assert after[28 : PAGE - 15] == bytes(PAGE - 43)  # the free space, zeroed
    assert after[PAGE - 15 :] == struct.pack("<HBBII", 3, 1, 0, 9, 1) + b"xyz"


def test_an_overflow_reference_on_a_leaf_keeps_its_page_and_length(tmp_path: Path) -> None:
    """BOVERFLOW: unused(2), type, unused, pgno, tlen: twelve bytes."""
    page = page_header(4, bdbpages.P_LBTREE, entries=1, high=PAGE - 12)
    struct.pack_into("<H", page, 26, PAGE - 12)
    page[PAGE - 12 :] = (
        b"\xee\xee" + bytes([bdbpages.B_OVERFLOW, 0xEE]) + struct.pack("<II", 6, 9000)
    )
    changed, after = _normalized(tmp_path, page)
    assert changed == 2
    assert after[28 : PAGE - 12] == bytes(PAGE - 40)
    assert after[PAGE - 12 :] == bytes([0, 0, bdbpages.B_OVERFLOW, 0]) + struct.pack("<II", 6, 9000)


def test_a_leaf_whose_index_points_into_the_index_is_left_alone(tmp_path: Path) -> None:
    """An offset below the index's end is nothing Berkeley DB writes: the page is not
    understood, so not one byte of it changes (only the file ID, on the metadata page)."""
    page = page_header(4, bdbpages.P_LBTREE, entries=2, high=40)
    struct.pack_into("<HH", page, 26, 28, 40)  # 28: inside the index (it ends at 30)
    page[30] = bdbpages.B_KEYDATA  # read as an item, it would look like one
    page[40:45] = struct.pack("<HB", 2, bdbpages.B_KEYDATA) + b"ab"
    changed, after = _normalized(tmp_path, page)
    assert changed == 1
    assert after == page


def test_a_leaf_item_longer_than_the_page_leaves_the_page_alone(tmp_path: Path) -> None:
    page = page_header(4, bdbpages.P_LBTREE, entries=1, high=PAGE - 8)
    struct.pack_into("<H", page, 26, PAGE - 8)
    page[PAGE - 8 : PAGE - 5] = struct.pack("<HB", 0x8001, bdbpages.B_KEYDATA)
    changed, after = _normalized(tmp_path, page)
    assert changed == 1
    assert after == page
