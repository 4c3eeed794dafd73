"""A BerkeleyDB rpm database (EL8's rpm) made reproducible: install times, then the files.

rpm 4.18 takes install times from SOURCE_DATE_EPOCH; EL8's rpm 4.14 (and
4.16) record the clock, in every header (INSTALLTIME, INSTALLTID) and in the
Installtid index, and Berkeley DB adds random file IDs and uncleared bytes.
rpm-ostree normalizes its images' databases the same way (rust/src/
normalization.rs: rewrite_rpmdb_timestamps on an exported header list, then
bdb_normalize); here, inside the install namespace and with the image's own
rpm:

1. `rpmdb --exportdb` writes every header, in the database's order;
2. each header's INSTALLTID becomes SOURCE_DATE_EPOCH and its INSTALLTIME
   SOURCE_DATE_EPOCH + its position (one second per package, as rpm 4.18
   counts them), in place: both are 32-bit values outside the signed region;
3. `rpmdb --importdb` writes a new database from that list, into a tmpfs of
   the namespace, so Berkeley DB's page size (it follows the file system's
   block size) is the same whatever the work directory is on;
4. bdbpages.normalize zeroes what the format leaves unused, and fixes the
   file IDs; the region files (__db.*) and lock files are not kept;
5. the new database replaces the old one, and is read back: every package
   and every index lookup by name must give what the old one gave, but for
   the two times.

Runs inside nsinstall (stdlib and this package only).
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from nestcustom.base import bdbpages

HEADER_MAGIC = bytes((0x8E, 0xAD, 0xE8, 0x01, 0, 0, 0, 0))
RPMTAG_INSTALLTIME, RPMTAG_INSTALLTID = 1008, 1128
RPM_INT32_TYPE = 4
#: What is compared before and after: what a package is known by, without the times.
CHECK_FORMAT = "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\t%{SHA1HEADER}\\t%{SIGMD5}\\n"

#: Runs argv in the bootstrap (the image's rpm) with the given stdin; returns stdout.
Runner = Callable[[Sequence[str], bytes], bytes]


class NormalizeError(RuntimeError):
    pass


def rewrite_install_times(stream: bytes, epoch: int) -> tuple[bytes, int]:
    """The exported header list with install times from `epoch`; (new list, headers)."""
    out = bytearray(stream)
    position = count = 0
    while position < len(out):
        if out[position : position + 8] != HEADER_MAGIC or position + 16 > len(out):
            raise NormalizeError(f"no rpm header at byte {position} of the exported database")
        entries, size = struct.unpack_from(">II", out, position + 8)
        store = position + 16 + 16 * entries
        if store + size > len(out):
            raise NormalizeError(f"header {count + 1} of the exported database is cut short")
        for index in range(entries):
            tag, kind, offset, items = struct.unpack_from(">IIiI", out, position + 16 + 16 * index)
            if tag not in (RPMTAG_INSTALLTIME, RPMTAG_INSTALLTID):
                continue
            if kind != RPM_INT32_TYPE or items != 1 or not 0 <= offset <= size - 4:
                raise NormalizeError(f"header {count + 1}: tag {tag} is not one 32-bit number")
            value = epoch if tag == RPMTAG_INSTALLTID else epoch + count
            struct.pack_into(">I", out, store + offset, value)
        position = store + size
        count += 1
    return bytes(out), count


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


def _listing(run: Runner, root: str, owned_sample: Sequence[str]) -> tuple[bytes, bytes, bytes]:
    """The database read three ways: every header, the Name index, the Basenames index."""
    every = run(["rpm", "--root", root, "-qa", "--qf", CHECK_FORMAT], b"")
    names = sorted(
        {line.split("\t", 1)[0].rsplit("-", 1)[0] for line in every.decode().splitlines()}
    )
    by_name = run(["rpm", "--root", root, "-q", "--qf", CHECK_FORMAT, *names], b"")
    by_file = run(["rpm", "--root", root, "-qf", "--qf", CHECK_FORMAT, *owned_sample], b"")
    return b"\n".join(sorted(every.splitlines())), by_name, by_file


def normalize_database(
    run: Runner,
    *,
    root: str,
    image_root: Path,
    image_dbdir: Path,
    scratch: str,
    scratch_on_host: Path,
    epoch: int,
    owned: Sequence[str],
) -> int:
    """Steps 1-5 of the module's doc; returns how many headers were rewritten.

    root: the image root as the bootstrap sees it (image_root: as this process sees
    it); image_dbdir: its database directory as this process sees it; scratch: an empty tmpfs directory as the
    bootstrap sees it (scratch_on_host: as this process sees it).
    """
    # `rpm -qf` looks at the file first: only files the install laid down (not excluded docs)
    present = [p for p in owned if p.startswith("/") and (image_root / p.lstrip("/")).exists()]
    sample = present[:: max(1, len(present) // 200)]
    before = _listing(run, root, sample)
    exported = run(["rpmdb", "--root", root, "--exportdb"], b"")
    rewritten, count = rewrite_install_times(exported, epoch)
    run(["rpmdb", "--dbpath", scratch, "--importdb"], rewritten)
    kept = normalize_files(scratch_on_host, epoch)
    if "Packages" not in kept:
        raise NormalizeError("rpmdb --importdb wrote no Packages file")
    for old in list(image_dbdir.iterdir()):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    for name in kept:
        shutil.copyfile(scratch_on_host / name, image_dbdir / name)
        (image_dbdir / name).chmod(0o644)
    after = _listing(run, root, sample)
    for what, old_text, new_text in zip(
        ("every header", "the Name index", "the Basenames index"), before, after, strict=True
    ):
        check_same(old_text, new_text, what)
    return count
