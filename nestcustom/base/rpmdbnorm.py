"""A BerkeleyDB rpm database (EL8's rpm) made reproducible: install times, then the files.

rpm 4.18 takes install times from SOURCE_DATE_EPOCH; EL8's rpm 4.14 (and
4.16) record the clock, in every header (INSTALLTIME, INSTALLTID) and in the
Installtid index, and Berkeley DB adds random file IDs and uncleared bytes.
rpm-ostree normalizes its images' databases for the same reason (rust/src/
normalization.rs: rewrite_rpmdb_timestamps, then bdb_normalize). Here,
inside the install namespace, with nothing but what every rpm since 4.0 has:

1. in `Packages` (a hash of header instance -> header), each header's
   INSTALLTID becomes SOURCE_DATE_EPOCH and its INSTALLTIME
   SOURCE_DATE_EPOCH + its place in instance order (one second per package,
   as rpm 4.18 counts them), in place: both are 32-bit numbers outside the
   header's signed region, so nothing else in the file moves;
2. the image's own rpm rebuilds the database from those headers
   (`rpmdb --rebuilddb` with `%_dbpath_rebuild` set: the new database stays
   where that macro says, on a tmpfs of the namespace, so Berkeley DB's page
   size, which follows the file system's block size, is the same whatever the
   work directory is on; every index, Installtid included, is written anew);
3. bdbpages.normalize zeroes what the format leaves unused and fixes the file
   IDs; region files (__db.*) and lock files are not kept;
4. the new database replaces the old one and is read back: every header, the
   Name and the Basenames index must give what the old one gave.

Runs inside nsinstall (stdlib and this package only).
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from nestcustom.base import bdbpages

RPMTAG_INSTALLTIME, RPMTAG_INSTALLTID = 1008, 1128
RPM_INT32_TYPE = 4
#: What is compared before and after: what a package is known by.
CHECK_FORMAT = "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\t%{SHA1HEADER}\\t%{SIGMD5}\\n"

#: Runs argv in the bootstrap (the image's rpm); returns stdout, raises NormalizeError.
Runner = Callable[[Sequence[str]], bytes]


class NormalizeError(RuntimeError):
    pass


def install_time_offsets(blob: bytes, number: int) -> list[tuple[int, int]]:
    """(tag, offset in the blob) of INSTALLTIME and INSTALLTID in a stored header."""
    if len(blob) < 8:
        raise NormalizeError(f"header {number}: {len(blob)} bytes")
    entries, size = struct.unpack_from(">II", blob)
    store = 8 + 16 * entries
    if store + size != len(blob):
        raise NormalizeError(f"header {number}: its index and data do not fill its record")
    found = []
    for index in range(entries):
        tag, kind, offset, items = struct.unpack_from(">IIiI", blob, 8 + 16 * index)
        if tag not in (RPMTAG_INSTALLTIME, RPMTAG_INSTALLTID):
            continue
        if kind != RPM_INT32_TYPE or items != 1 or not 0 <= offset <= size - 4:
            raise NormalizeError(f"header {number}: tag {tag} is not one 32-bit number")
        found.append((tag, store + offset))
    return found


def _put(data: bytearray, segments: bdbpages.Segments, offset: int, value: bytes) -> None:
    """Write `value` at `offset` of a value stored in `segments` (it may span two pages)."""
    for index, byte in enumerate(value):
        place = offset + index
        for start, length in segments:
            if place < length:
                data[start + place] = byte
                break
            place -= length


def set_install_times(path: Path, epoch: int) -> int:
    """Step 1 of the module's doc on a `Packages` file; returns the headers changed."""
    data = bytearray(path.read_bytes())
    order = "<" if data[12:16] == struct.pack("<I", bdbpages.HASH_MAGIC) else ">"
    records = []
    for key, segments in bdbpages.hash_values(data):
        (instance,) = struct.unpack(order + "I", key) if len(key) == 4 else (-1,)
        if instance < 0:
            raise NormalizeError(f"{path.name}: a key of {len(key)} bytes, not an instance")
        if instance:  # instance 0 keeps the highest instance number, not a header
            records.append((instance, segments))
    for position, (instance, segments) in enumerate(sorted(records)):
        blob = b"".join(bytes(data[start : start + length]) for start, length in segments)
        for tag, offset in install_time_offsets(blob, instance):
            value = epoch if tag == RPMTAG_INSTALLTID else epoch + position
            _put(data, segments, offset, struct.pack(">I", value))
    path.write_bytes(data)
    return len(records)


def is_bdb(dbdir: Path) -> bool:
    """Whether the database in `dbdir` is Berkeley DB (a hash `Packages`)."""
    return bdbpages.is_berkeley_db(dbdir / "Packages")


def normalize_files(dbdir: Path, epoch: int) -> list[str]:
    """Normalize every database file in `dbdir`; drop region and lock files. Names kept."""
    kept = []
    for path in sorted(dbdir.iterdir()):
        if path.name.startswith(("__db.", ".")) or not path.is_file():
            path.unlink()
            continue
        if bdbpages.is_berkeley_db(path):
            bdbpages.normalize(path, epoch)
        kept.append(path.name)
    return kept


def check_same(before: bytes, after: bytes, what: str) -> None:
    if before != after:
        old, new = before.decode(errors="replace"), after.decode(errors="replace")
        first = next(
            (
                f"{a!r} -> {b!r}"
                for a, b in zip(old.splitlines(), new.splitlines(), strict=False)
                if a != b
            ),
            f"{len(old.splitlines())} lines -> {len(new.splitlines())} lines",
        )
        raise NormalizeError(f"the normalized rpm database differs ({what}): {first}")


def _listing(run: Runner, dbpath: str, owned_sample: Sequence[str]) -> tuple[bytes, ...]:
    """The database read three ways: every header, the Name index, the Basenames index."""
    rpm = ["rpm", "--dbpath", dbpath]
    every = run([*rpm, "-qa", "--qf", CHECK_FORMAT])
    # NAME-EPOCH:VERSION-RELEASE.ARCH -> NAME
    heads = (line.split(b"\t", 1)[0].decode() for line in every.splitlines())
    names = sorted({head.rsplit(":", 1)[0].rsplit("-", 1)[0] for head in heads})
    by_name = run([*rpm, "-q", "--qf", CHECK_FORMAT, *names])
    by_file = run([*rpm, "-qf", "--qf", CHECK_FORMAT, *owned_sample])
    return b"\n".join(sorted(every.splitlines())), by_name, by_file


def normalize_database(
    run: Runner,
    *,
    dbpath: str,
    image_root: Path,
    image_dbdir: Path,
    scratch: str,
    scratch_on_host: Path,
    epoch: int,
    owned: Sequence[str],
) -> int:
    """Steps 1-4 of the module's doc; returns how many headers got the ISO's times.

    dbpath: the image's database as the bootstrap sees it (image_dbdir: as this
    process sees it; image_root: the image root as this process sees it); scratch:
    an empty tmpfs directory as the bootstrap sees it (scratch_on_host: here).
    """
    # `rpm -qf` looks at the file first: only files the install laid down (not excluded docs)
    present = [p for p in owned if p.startswith("/") and (image_root / p.lstrip("/")).exists()]
    sample = present[:: max(1, len(present) // 200)]
    before = _listing(run, dbpath, sample)
    count = set_install_times(image_dbdir / "Packages", epoch)
    new = f"{scratch}/rpmdb"
    run(["rpmdb", "--dbpath", dbpath, "--define", f"_dbpath_rebuild {new}", "--rebuilddb"])
    built = scratch_on_host / "rpmdb"
    kept = normalize_files(built, epoch)
    if "Packages" not in kept:
        raise NormalizeError("rpmdb --rebuilddb wrote no Packages file")
    for old in list(image_dbdir.iterdir()):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    for name in kept:
        shutil.copyfile(built / name, image_dbdir / name)
        (image_dbdir / name).chmod(0o644)
    after = _listing(run, dbpath, sample)
    for what, old_text, new_text in zip(
        ("every header", "the Name index", "the Basenames index"), before, after, strict=True
    ):
        check_same(old_text, new_text, what)
    return count
