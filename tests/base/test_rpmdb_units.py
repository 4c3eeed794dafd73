"""Pure parts of EL8 support and the ISO cache: BerkeleyDB pages, install times, verdicts, entries."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

from nestcustom.base import bdbpages, isocache, rpmdbnorm, sigcheck

PAGE = 512
EPOCH = 1699617600


def page_header(pgno: int, kind: int, entries: int = 0, high: int = PAGE) -> bytearray:
    page = bytearray(b"\xee" * PAGE)  # what Berkeley DB leaves in a reused cache page
    struct.pack_into("<QIIIHHBB", page, 0, 1, pgno, 0, 0, entries, high, 1, kind)
    return page


def meta_page(uid: bytes, last: int) -> bytearray:
    page = bytearray(PAGE)
    struct.pack_into("<QIIII", page, 0, 1, 0, bdbpages.HASH_MAGIC, 9, PAGE)
    page[25] = bdbpages.P_HASHMETA
    struct.pack_into("<I", page, 32, last)
    page[52:72] = uid
    return page


def hash_page() -> tuple[bytearray, bytes, bytes]:
    """A hash page: a key (H_KEYDATA) and its value off-page (H_OFFPAGE)."""
    key = bytes([1]) + struct.pack("<I", 7)  # type, the header's instance number
    offpage = bytes([bdbpages.H_OFFPAGE]) + b"\xaa\xbb\xcc" + struct.pack("<II", 2, 4000)
    high = PAGE - len(key) - len(offpage)
    page = page_header(1, bdbpages.P_HASH, entries=2, high=high)
    struct.pack_into("<HH", page, 26, PAGE - len(key), high)
    page[PAGE - len(key) :] = key
    page[high : high + len(offpage)] = offpage
    return page, key, offpage


def overflow_page() -> bytearray:
    page = page_header(2, bdbpages.P_OVERFLOW, entries=1, high=10)
    page[26:36] = b"0123456789"
    return page


def leaf_page() -> bytearray:
    """A btree leaf with two BKEYDATA items, each padded to four bytes with garbage."""
    page = page_header(4, bdbpages.P_LBTREE, entries=2, high=PAGE - 16)
    first, second = PAGE - 8, PAGE - 16
    struct.pack_into("<HH", page, 26, first, second)
    page[first : first + 5] = struct.pack("<HB", 2, bdbpages.B_KEYDATA) + b"ab"
    page[second : second + 6] = struct.pack("<HB", 3, bdbpages.B_KEYDATA) + b"xyz"
    return page


def database(tmp_path: Path, name: str, uid: bytes) -> Path:
    hashed, _, _ = hash_page()
    free = page_header(3, bdbpages.P_INVALID)
    pages = [meta_page(uid, 4), hashed, overflow_page(), free, leaf_page()]
    path = tmp_path / name
    path.write_bytes(b"".join(pages))
    return path


def test_normalize_zeroes_only_what_the_format_leaves_unused(tmp_path: Path) -> None:
    path = database(tmp_path, "Packages", os.urandom(20))
    assert bdbpages.is_berkeley_db(path)
    assert bdbpages.normalize(path, EPOCH) == 5
    data = path.read_bytes()
    pages = [data[i : i + PAGE] for i in range(0, len(data), PAGE)]
    assert pages[0][52:72] == bdbpages.file_id("Packages", EPOCH)
    _, key, offpage = hash_page()
    high = PAGE - len(key) - len(offpage)
    assert pages[1][:30] == hash_page()[0][:30]  # header and index untouched
    assert pages[1][30:high] == bytes(high - 30)  # the free space before the items
    assert pages[1][PAGE - len(key) :] == key
    assert pages[1][high : high + len(offpage)] == offpage[:1] + bytes(3) + offpage[4:]
    assert pages[2][26:36] == b"0123456789" and pages[2][36:] == bytes(PAGE - 36)
    assert pages[3][:26] == page_header(3, bdbpages.P_INVALID)[:26]
    assert pages[3][26:] == bytes(PAGE - 26)
    leaf = pages[4]
    assert leaf[PAGE - 8 : PAGE - 3] == struct.pack("<HB", 2, 1) + b"ab"
    assert leaf[PAGE - 3 :] == bytes(3)  # padding after the item
    assert leaf[PAGE - 16 : PAGE - 10] == struct.pack("<HB", 3, 1) + b"xyz"
    assert leaf[PAGE - 10 : PAGE - 8] == bytes(2)
    assert leaf[30 : PAGE - 16] == bytes(PAGE - 46)


def test_two_files_with_the_same_content_normalize_to_the_same_bytes(tmp_path: Path) -> None:
    one, two = tmp_path / "a", tmp_path / "b"
    one.mkdir()
    two.mkdir()
    first = database(one, "Name", os.urandom(20))
    second = database(two, "Name", os.urandom(20))
    raw = bytearray(second.read_bytes())
    raw[PAGE + 40] = 0x11  # other garbage in the hash page's free space
    second.write_bytes(bytes(raw))
    assert first.read_bytes() != second.read_bytes()
    bdbpages.normalize(first, EPOCH)
    bdbpages.normalize(second, EPOCH)
    assert first.read_bytes() == second.read_bytes()
    assert bdbpages.normalize(first, EPOCH) == 0  # idempotent


def test_what_is_no_berkeley_db_is_refused(tmp_path: Path) -> None:
    sqlite = tmp_path / "rpmdb.sqlite"
    sqlite.write_bytes(b"SQLite format 3\x00" + bytes(200))
    assert not bdbpages.is_berkeley_db(sqlite)
    with pytest.raises(bdbpages.NotBerkeleyDb):
        bdbpages.normalize(sqlite, EPOCH)


def header(name: bytes, installtime: int, installtid: int, buildtime: int) -> bytes:
    """A stored rpm header: NAME (string), BUILDTIME, INSTALLTIME, INSTALLTID (int32)."""
    data = name + b"\x00" + bytes(3 - len(name) % 4)
    entries = [(1000, 6, 0, 1)]
    for tag, value in ((1006, buildtime), (1008, installtime), (1128, installtid)):
        entries.append((tag, 4, len(data), 1))
        data += struct.pack(">I", value)
    index = b"".join(struct.pack(">IIiI", *e) for e in entries)
    return struct.pack(">II", len(entries), len(data)) + index + data


def packages_file(path: Path, first: bytes, second: bytes) -> None:
    """A hash `Packages`: instance 0 (the counter), 1 on the page, 2 across two overflow
    pages split inside its INSTALLTIME."""
    split = len(second) - 6  # INSTALLTIME is 8..4 bytes before the end, INSTALLTID the last 4
    items = [
        bytes([1]) + struct.pack("<I", 0), bytes([1]) + struct.pack("<I", 2),
        bytes([1]) + struct.pack("<I", 1), bytes([1]) + first,
        bytes([1]) + struct.pack("<I", 2),
        bytes([bdbpages.H_OFFPAGE]) + bytes(3) + struct.pack("<II", 2, len(second)),
    ]  # fmt: skip
    offsets, end = [], PAGE
    for item in items:
        end -= len(item)
        offsets.append(end)
    hashed = page_header(1, bdbpages.P_HASH, entries=len(items), high=end)
    struct.pack_into(f"<{len(items)}H", hashed, 26, *offsets)
    for offset, item in zip(offsets, items, strict=True):
        hashed[offset : offset + len(item)] = item
    one = page_header(2, bdbpages.P_OVERFLOW, entries=1, high=split)
    struct.pack_into("<I", one, 16, 3)  # next page
    one[26 : 26 + split] = second[:split]
    two = page_header(3, bdbpages.P_OVERFLOW, entries=1, high=len(second) - split)
    struct.pack_into("<I", two, 16, 0)
    two[26 : 26 + len(second) - split] = second[split:]
    path.write_bytes(bytes(meta_page(bytes(20), 3) + hashed + one + two))


def stored_headers(path: Path) -> dict[bytes, bytes]:
    data = path.read_bytes()
    return {
        key: b"".join(data[start : start + length] for start, length in segments)
        for key, segments in bdbpages.hash_values(data)
    }


def test_install_times_become_the_isos_date_one_second_per_package(tmp_path: Path) -> None:
    path = tmp_path / "Packages"
    bash = header(b"bash", 1765000001, 1765000000, 1600000000)
    coreutils = header(b"coreutils" * 40, 1765000002, 1765000000, 1600000001)
    packages_file(path, bash, coreutils)
    assert rpmdbnorm.set_install_times(path, EPOCH) == 2
    stored = stored_headers(path)
    assert stored[struct.pack("<I", 0)] == struct.pack("<I", 2)
    # instance order: bash (1) first; build times and everything else untouched
    assert stored[struct.pack("<I", 1)] == header(b"bash", EPOCH, EPOCH, 1600000000)
    assert stored[struct.pack("<I", 2)] == header(b"coreutils" * 40, EPOCH + 1, EPOCH, 1600000001)


def test_a_header_that_does_not_fill_its_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Packages"
    bash = header(b"bash", 1, 2, 3)
    packages_file(path, bash + b"\x00\x00\x00\x00", header(b"x" * 300, 1, 2, 3))
    with pytest.raises(rpmdbnorm.NormalizeError, match="do not fill its record"):
        rpmdbnorm.set_install_times(path, EPOCH)


def test_an_install_time_that_is_no_32_bit_number_is_refused() -> None:
    blob = bytearray(header(b"bash", 1, 2, 3))
    struct.pack_into(">I", blob, 8 + 16 * 2 + 4, 6)  # INSTALLTIME said to be a string
    with pytest.raises(rpmdbnorm.NormalizeError, match="tag 1008"):
        rpmdbnorm.install_time_offsets(bytes(blob), 1)


@pytest.mark.parametrize(
    ("verdict", "ok"),
    [
        ("digests signatures OK", True),
        ("rsa sha1 (md5) pgp md5 OK", True),  # rpm < 4.14.2
        ("digests OK", False),  # unsigned
        ("digests SIGNATURES NOT OK", False),  # a key the ISO does not carry
        ("DIGESTS signatures NOT OK", False),
        ("RSA sha1 ((MD5) PGP) md5 NOT OK", False),
        ("", False),
    ],
)
def test_signature_verdicts(verdict: str, ok: bool) -> None:
    assert sigcheck.verdict_ok(verdict) is ok


def test_the_cache_is_used_only_when_closed_to_others(tmp_path: Path) -> None:
    cache = isocache.open_cache(tmp_path / "cache")
    assert cache is not None and oct((tmp_path / "cache").stat().st_mode & 0o777) == "0o700"
    (tmp_path / "cache").chmod(0o777)
    with pytest.raises(isocache.CacheUnsafe, match="writable by others"):
        isocache.open_cache(tmp_path / "cache")
    assert isocache.open_cache(None) is None
    with pytest.raises(isocache.CacheUnsafe, match="no ',' or ':'"):
        isocache.open_cache(tmp_path / "a:b")


def test_the_index_names_an_iso_until_its_file_changes(tmp_path: Path) -> None:
    cache = isocache.open_cache(tmp_path / "cache")
    assert cache is not None
    iso = tmp_path / "dvd.iso"
    iso.write_bytes(b"one")
    assert isocache.known_sha256(cache, iso) is None
    cache.entry("a" * 64)
    isocache.remember(cache, iso, "a" * 64)
    assert isocache.known_sha256(cache, iso) == "a" * 64
    stamp = iso.stat().st_mtime_ns
    time.sleep(0.01)
    iso.write_bytes(b"two")
    os.utime(iso, ns=(stamp, stamp))  # the same size and modification time: still seen
    assert isocache.known_sha256(cache, iso) is None


def test_old_entries_go_and_a_failed_store_leaves_nothing(tmp_path: Path) -> None:
    cache = isocache.open_cache(tmp_path / "cache")
    assert cache is not None
    iso = tmp_path / "dvd.iso"
    iso.write_bytes(b"x")
    for index in range(isocache.KEEP + 2):
        sha = f"{index:064x}"
        entry = cache.entry(sha)
        os.utime(entry.path, (1000 + index, 1000 + index))
    isocache.remember(cache, iso, f"{isocache.KEEP + 1:064x}")
    kept = sorted(p.name.split("-")[1] for p in cache.root.glob("iso-*"))
    assert kept == [f"{i:064x}" for i in range(2, isocache.KEEP + 2)]

    entry = cache.entry("f" * 64)

    def broken(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        entry.store("bootstrap-x", broken)
    assert list(entry.path.iterdir()) == []
    made = entry.store("bootstrap-x", lambda tmp: (tmp / "rpm").write_text("y"))
    assert (made / "rpm").read_text() == "y" and entry.bootstrap("x") == made
    entry.add_verified(["sha256:1", "sha256:2"])
    entry.add_verified(["sha256:2", "sha256:3"])
    assert entry.verified() == {"sha256:1", "sha256:2", "sha256:3"}
