"""The DVD ISO as a file: checked before anything else, then read without mounting.

The check reads the volume descriptors itself (a few sectors), so a zip renamed
.iso, a truncated download or a directory is refused in milliseconds, with the
cause, before any work starts. Reading goes through pycdlib (pure Python, no
loop device, no privileges): Rock Ridge names where the image has them (every
Linux DVD does), else Joliet, else UDF, else plain ISO 9660 names.
"""

from __future__ import annotations

import contextlib
import errno
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from nestcustom.errors import BadInputError, NestcustomError

SECTOR = 2048
_DESCRIPTORS = 16 * SECTOR  # the system area comes first
_UDF_ANCHOR = 256
# isohybrid and xorriso may pad the image to a cylinder or alignment boundary.
_MAX_PADDING = 4 * 1024 * 1024


@dataclass(frozen=True)
class IsoFormat:
    """What the volume descriptors say about the file."""

    kind: str  # "ISO 9660", "UDF" or "ISO 9660 + UDF"
    volume_id: str
    declared_size: int  # bytes, from the descriptors
    file_size: int
    created: datetime | None  # the primary volume descriptor's creation date


def _bad(path: Path, what: str, hint: str | None = None) -> BadInputError:
    return BadInputError(f"{path}: {what}", hint)


def _read_head(path: Path, length: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(length)
    except IsADirectoryError:
        raise _bad(path, "is a directory, not an ISO image", "give the .iso file itself") from None
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except PermissionError:
        raise _bad(path, "cannot be read (permission denied)") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read: {exc.strerror or exc}") from exc


def _pvd_date(raw: bytes) -> datetime | None:
    """An ISO 9660 dec-datetime (17 bytes): YYYYMMDDhhmmsscc + offset in 15 min units."""
    try:
        text = raw[:14].decode("ascii")
        if text.strip("0") == "":
            return None
        offset = struct.unpack("b", raw[16:17])[0] * 15 * 60
        local = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        return datetime.fromtimestamp(local.timestamp() - offset, tz=timezone.utc)
    except (UnicodeDecodeError, ValueError, struct.error):
        return None


def _udf_anchor_at(handle: BinaryIO, sector: int) -> bool:
    handle.seek(sector * SECTOR)
    tag = handle.read(16)
    if len(tag) < 16:
        return False
    identifier, location = struct.unpack_from("<H", tag, 0)[0], struct.unpack_from("<I", tag, 12)[0]
    return bool(identifier == 2 and location == sector)


def check_iso(path: Path) -> IsoFormat:
    """The image's format and size, or a BadInputError naming what is wrong with the file."""
    if path.is_dir():
        raise _bad(path, "is a directory, not an ISO image", "give the .iso file itself")
    head = _read_head(path, _DESCRIPTORS + 64 * SECTOR)
    size = path.stat().st_size
    if len(head) < _DESCRIPTORS + SECTOR:
        raise _bad(
            path,
            f"is {size} bytes: too small to be an ISO 9660 or UDF image",
            "is the download complete?",
        )
    pvd: bytes | None = None
    udf = False
    for index in range(64):
        sector = head[_DESCRIPTORS + index * SECTOR : _DESCRIPTORS + (index + 1) * SECTOR]
        if len(sector) < SECTOR:
            break
        ident = sector[1:6]
        if ident == b"CD001":
            if sector[0] == 1 and pvd is None:
                pvd = sector
            continue
        if ident in (b"NSR02", b"NSR03"):
            udf = True
            continue
        if ident in (b"BEA01", b"TEA01", b"BOOT2", b"CDW02"):
            continue
        break  # past the volume recognition sequence
    if pvd is None and not udf:
        looks = ""
        if head.startswith(b"PK\x03\x04"):
            looks = " (it is a ZIP archive)"
        elif head[:2] == b"\x1f\x8b":
            looks = " (it is gzip-compressed)"
        raise _bad(
            path,
            f"is not an ISO 9660 or UDF image: no volume descriptor at byte {_DESCRIPTORS}{looks}",
            "give the distribution's DVD ISO (e.g. NewStart-CGS-Linux-...-x86_64.dvd.iso)",
        )
    if pvd is not None:
        blocks = struct.unpack_from("<I", pvd, 80)[0]
        block_size = struct.unpack_from("<H", pvd, 128)[0]
        declared = blocks * block_size
        volume_id = pvd[40:72].decode("ascii", "replace").strip()
        created = _pvd_date(pvd[813:830])
    else:
        with path.open("rb") as handle:
            if not _udf_anchor_at(handle, _UDF_ANCHOR):
                raise _bad(path, "is a UDF image without its anchor at sector 256: damaged")
            last = size // SECTOR - 1
            if not (_udf_anchor_at(handle, last) or _udf_anchor_at(handle, last - 256)):
                raise _bad(
                    path,
                    "is a UDF image whose closing anchor is missing: it is truncated",
                    "download it again and compare its checksum",
                )
        declared, volume_id, created = size, "", None
    if size < declared:
        raise _bad(
            path,
            f"is truncated: its volume descriptor declares {declared} bytes, the file has {size}",
            "download it again and compare its checksum",
        )
    if size > declared + _MAX_PADDING:
        raise _bad(
            path,
            f"is {size} bytes but its volume descriptor declares {declared}: "
            "data was appended or the descriptor is damaged",
        )
    kind = "ISO 9660 + UDF" if pvd is not None and udf else "ISO 9660" if pvd is not None else "UDF"
    return IsoFormat(kind, volume_id, declared, size, created)


class IsoReader:
    """Files of an open image, by their Rock Ridge (or Joliet, UDF, ISO 9660) paths."""

    def __init__(self, path: Path, handle: BinaryIO, iso: Any) -> None:
        self.path = path
        self._handle = handle
        self._iso = iso
        if iso.has_rock_ridge():
            self._facade, self._key = "rr_path", "rr_path"
        elif iso.has_joliet():
            self._facade, self._key = "joliet_path", "joliet_path"
        elif iso.has_udf():
            self._facade, self._key = "udf_path", "udf_path"
        else:
            self._facade, self._key = "iso_path", "iso_path"
        self._files = self._index()

    def _index(self) -> dict[str, str]:
        """Every regular file: its clean path -> the path pycdlib wants."""
        files: dict[str, str] = {}
        for dirpath, _dirs, names in self._iso.walk(**{self._key: "/"}):
            for name in names:
                raw = f"{dirpath.rstrip('/')}/{name}"
                clean = raw
                if self._key == "iso_path":  # FOO.RPM;1 -> FOO.RPM
                    clean = raw.split(";", 1)[0].rstrip(".")
                files[clean] = raw
        return files

    @property
    def namespace(self) -> str:
        return {"rr_path": "Rock Ridge", "joliet_path": "Joliet", "udf_path": "UDF"}.get(
            self._key, "ISO 9660"
        )

    def files(self) -> list[str]:
        return sorted(self._files)

    def exists(self, path: str) -> bool:
        return self._lookup(path) is not None

    def _lookup(self, path: str) -> str | None:
        path = "/" + path.lstrip("/")
        if path in self._files:
            return self._files[path]
        if self._key == "iso_path":
            upper = path.upper()
            for clean, raw in self._files.items():
                if clean.upper() == upper:
                    return raw
        return None

    def read_bytes(self, path: str, limit: int = 64 * 1024 * 1024) -> bytes:
        raw = self._require(path)
        import io

        buffer = io.BytesIO()
        self._copy(raw, buffer)
        data = buffer.getvalue()
        if len(data) > limit:
            raise BadInputError(f"{self.path}: {path} is {len(data)} bytes, more than expected")
        return data

    def extract(self, path: str, dest: Path) -> int:
        """Copy one file out of the image; returns the bytes written."""
        raw = self._require(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with dest.open("wb") as out:
                self._copy(raw, out)
                return out.tell()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise NestcustomError(
                    f"no space left on the device of {dest.parent} while extracting {path}",
                    "free space there or pass --workdir on a larger file system",
                ) from exc
            raise

    def _require(self, path: str) -> str:
        raw = self._lookup(path)
        if raw is None:
            raise BadInputError(f"{self.path}: the image has no file {path}")
        return raw

    def _copy(self, raw: str, out: Any) -> None:
        try:
            self._iso.get_file_from_iso_fp(out, blocksize=1024 * 1024, **{self._facade: raw})
        except OSError:
            raise
        except Exception as exc:  # pycdlib raises its own exceptions for damaged images
            raise BadInputError(f"{self.path}: cannot read {raw}: {exc}") from exc


@contextlib.contextmanager
def open_iso(path: Path) -> Iterator[IsoReader]:
    """Read the image without mounting it (check_iso first)."""
    import pycdlib  # imported here: only this stage needs it

    with path.open("rb") as handle:
        iso = pycdlib.PyCdlib()
        try:
            iso.open_fp(handle)
        except Exception as exc:  # PyCdlibInvalidInput and friends: a damaged image
            raise BadInputError(
                f"{path}: cannot read the image's directory tree: {exc}",
                "the file passed the format check but its contents are damaged",
            ) from exc
        try:
            yield IsoReader(path, handle, iso)
        finally:
            with contextlib.suppress(Exception):
                iso.close()
