"""Berkeley DB files made byte-for-byte reproducible: the bytes the format leaves unused, zeroed.

EL8's rpm keeps its database in Berkeley DB files (a hash `Packages`, btree
indexes). The same content written twice gives different bytes: Berkeley DB
reuses pages from its cache without clearing them, so the gap between a
page's index and its items, the tail of overflow pages, alignment padding
and the "unused" bytes of some items hold whatever was in memory; and every
file gets a random 20-byte file ID in its metadata page. rpm-ostree meets
the same problem for its images (rust/src/normalization.rs, bdb_normalize)
and solves it the same way: zero what the format never reads, and derive
the file ID from the file's name and the build's date.

Only what the format (Berkeley DB 5.3, db_page.h) defines as unused is
written; a page of a type not known here is left alone. Files are read in
the byte order their metadata page says (little-endian on x86_64).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

HASH_MAGIC = 0x061561
BTREE_MAGIC = 0x053162
_UID = slice(52, 72)  # the file ID in a metadata page
_HEADER = 26  # size of a page header; its item index follows

# page types (db_page.h)
P_INVALID, P_HASH_UNSORTED, P_IBTREE, P_LBTREE, P_OVERFLOW = 0, 2, 3, 5, 7
P_HASHMETA, P_BTREEMETA, P_LDUP, P_HASH = 8, 9, 12, 13
# item types: hash (H_*) and btree (B_*)
H_KEYDATA, H_OFFPAGE, H_OFFDUP = 1, 3, 4
B_KEYDATA, B_DUPLICATE, B_OVERFLOW = 1, 2, 3


class NotBerkeleyDb(ValueError):
    """The file is not a Berkeley DB hash or btree database."""


def _order(page0: bytes) -> str:
    for order in ("<", ">"):
        (magic,) = struct.unpack_from(order + "I", page0, 12)
        if magic in (HASH_MAGIC, BTREE_MAGIC):
            return order
    raise NotBerkeleyDb("no Berkeley DB hash or btree magic in the metadata page")


def is_berkeley_db(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            _order(handle.read(72))
    except (OSError, struct.error, NotBerkeleyDb):
        return False
    return True


def file_id(name: str, epoch: int) -> bytes:
    """The 20-byte file ID a normalized file gets: from its name and the build's date."""
    return hashlib.sha256(f"nestcustom rpmdb {epoch} {name}".encode()).digest()[:20]


def normalize(path: Path, epoch: int) -> int:
    """Zero the unused bytes of every page of `path` and fix its file ID; pages changed."""
    data = bytearray(path.read_bytes())
    order = _order(bytes(data[:72]))
    (pagesize,) = struct.unpack_from(order + "I", data, 20)
    if pagesize < 512 or pagesize > 65536 or len(data) % pagesize:
        raise NotBerkeleyDb(f"odd page size {pagesize} for a file of {len(data)} bytes")
    before = bytes(data)
    data[_UID] = file_id(path.name, epoch)
    for start in range(pagesize, len(data), pagesize):
        _page(memoryview(data)[start : start + pagesize], order)
    changed = sum(
        before[i : i + pagesize] != data[i : i + pagesize] for i in range(0, len(data), pagesize)
    )
    if changed:
        path.write_bytes(data)
    return changed


def _zero(page: memoryview, start: int, end: int) -> None:
    if 0 <= start < end <= len(page):
        page[start:end] = bytes(end - start)


def _page(page: memoryview, order: str) -> None:
    kind = page[25]
    entries, high = struct.unpack_from(order + "HH", page, 20)
    index_end = _HEADER + 2 * entries
    if kind == P_INVALID:  # a free page: only its header (the free list's link) counts
        _zero(page, _HEADER, len(page))
    elif kind == P_OVERFLOW:  # `high` is the length of the data this page holds
        _zero(page, _HEADER + high, len(page))
    elif kind in (P_HASH, P_HASH_UNSORTED):
        _hash_page(page, order, entries, index_end, high)
    elif kind in (P_IBTREE, P_LBTREE, P_LDUP):
        _btree_page(page, order, entries, index_end, kind == P_IBTREE)


def _offsets(page: memoryview, order: str, entries: int, index_end: int) -> list[int] | None:
    offsets = list(struct.unpack_from(f"{order}{entries}H", page, _HEADER))
    if any(o < index_end or o >= len(page) for o in offsets):
        return None  # not what this module understands: leave the page as it is
    return offsets


def _hash_page(page: memoryview, order: str, entries: int, index_end: int, high: int) -> None:
    offsets = _offsets(page, order, entries, index_end)
    if offsets is None or not index_end <= high <= len(page):
        return
    # items are packed from `high` to the page's end; before them lies free space
    _zero(page, index_end, min([high, *offsets]))
    for offset in offsets:
        if page[offset] in (H_OFFPAGE, H_OFFDUP):  # type, then three unused bytes
            _zero(page, offset + 1, offset + 4)


def _btree_page(page: memoryview, order: str, entries: int, index_end: int, internal: bool) -> None:
    offsets = _offsets(page, order, entries, index_end)
    if offsets is None:
        return
    used: list[tuple[int, int]] = []
    for offset in offsets:
        (length,) = struct.unpack_from(order + "H", page, offset)
        kind = page[offset + 2] & 0x7F  # the high bit marks a deleted item
        if internal:  # BINTERNAL: len, type, unused, pgno, nrecs, data[len]
            size = 12 + length
            _zero(page, offset + 3, offset + 4)
        elif kind == B_KEYDATA:  # BKEYDATA: len, type, data[len]
            size = 3 + length
        elif kind in (B_DUPLICATE, B_OVERFLOW):  # BOVERFLOW: unused(2), type, unused, pgno, tlen
            size = 12
            _zero(page, offset, offset + 2)
            _zero(page, offset + 3, offset + 4)
        else:
            return
        if offset + size > len(page):
            return
        used.append((offset, offset + size))
    # between the index and the items, and the alignment padding after each item
    position = index_end
    for start, end in sorted(used):
        _zero(page, position, start)
        position = max(position, end)
    _zero(page, position, len(page))


Segments = list[tuple[int, int]]  # (file offset, length): where a value's bytes lie


def hash_values(data: bytes | bytearray) -> Iterator[tuple[bytes, Segments]]:
    """Every (key, where its value lies) of a hash database, page by page.

    A value is either on the page (H_KEYDATA) or in a chain of overflow pages
    (H_OFFPAGE: first page, total length), as rpm stores its headers.
    """
    order = _order(bytes(data[:72]))
    (pagesize,) = struct.unpack_from(order + "I", data, 20)
    for start in range(pagesize, len(data) - pagesize + 1, pagesize):
        if data[start + 25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        (entries,) = struct.unpack_from(order + "H", data, start + 20)
        offsets = struct.unpack_from(f"{order}{entries}H", data, start + _HEADER)
        ends = (pagesize, *offsets)  # an item ends where the one before it starts
        for index in range(0, entries - 1, 2):
            key_at, value_at = offsets[index], offsets[index + 1]
            if data[start + key_at] != H_KEYDATA:
                raise NotBerkeleyDb(f"page {start // pagesize}: a key that is not on the page")
            key = bytes(data[start + key_at + 1 : start + ends[index]])
            kind = data[start + value_at]
            if kind == H_KEYDATA:
                first = start + value_at + 1
                yield key, [(first, start + ends[index + 1] - first)]
            elif kind == H_OFFPAGE:
                pgno, total = struct.unpack_from(order + "II", data, start + value_at + 4)
                yield key, _chain(data, order, pagesize, pgno, total)
            else:
                raise NotBerkeleyDb(f"page {start // pagesize}: a value of type {kind}")


def _chain(data: bytes | bytearray, order: str, pagesize: int, pgno: int, total: int) -> Segments:
    segments: Segments = []
    seen = 0
    while pgno and seen < total:
        start = pgno * pagesize
        if start + pagesize > len(data) or data[start + 25] != P_OVERFLOW:
            raise NotBerkeleyDb(f"overflow page {pgno} is not one")
        next_pgno, _, length = struct.unpack_from(order + "IHH", data, start + 16)
        segments.append((start + _HEADER, length))
        seen += length
        pgno = next_pgno
    if seen != total:
        raise NotBerkeleyDb(f"an overflow chain holds {seen} bytes, its item says {total}")
    return segments
