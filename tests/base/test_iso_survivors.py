"""The base stage's image config and ISO reading, asserted as exact values: the
healthcheck and rootfs a container engine reads, a PVD date with a time zone, a UDF-only
image's kind, ISO 9660 names without their version and the missing-file message."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nestcustom.base import image as image_writer
from nestcustom.base.isofile import SECTOR, check_iso, open_iso
from nestcustom.errors import BadInputError
from tests.base.isomaker import make_iso

_SECOND = 1_000_000_000


def test_the_config_holds_the_healthcheck_timings_and_the_layer() -> None:
    spec = image_writer.ImageSpec(
        arch="aarch64",
        created=1699617600,
        labels=(),
        cmd=("/sbin/init",),
        healthcheck=("CMD", "true"),
        stop_signal=None,
        history="h",
    )
    diff_id = "sha256:" + "cd" * 32
    config = json.loads(image_writer.config_json(spec, diff_id))
    assert config["config"]["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 30 * _SECOND,
        "Timeout": 10 * _SECOND,
        "StartPeriod": 60 * _SECOND,
        "Retries": 3,
    }
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert config["architecture"] == "arm64"
    assert "StopSignal" not in config["config"]


def _set_pvd_date(iso: Path, text: bytes, quarter_hours: int) -> None:
    """The PVD's creation date (ISO 9660 8.4.26: 16 digits, then the offset from UTC)."""
    with iso.open("r+b") as handle:
        handle.seek(16 * SECTOR + 813)
        handle.write(text + struct.pack("b", quarter_hours))


@pytest.mark.parametrize(
    ("quarter_hours", "utc"),
    [
        (32, datetime(2023, 11, 10, 4, 30, 15, tzinfo=timezone.utc)),  # UTC+8
        (-20, datetime(2023, 11, 10, 17, 30, 15, tzinfo=timezone.utc)),  # UTC-5
        (0, datetime(2023, 11, 10, 12, 30, 15, tzinfo=timezone.utc)),
    ],
)
def test_the_creation_date_is_read_in_utc(
    tmp_path: Path, quarter_hours: int, utc: datetime
) -> None:
    iso = make_iso(tmp_path / "d.iso", {"hello.txt": b"hi"})
    _set_pvd_date(iso, b"2023111012301500", quarter_hours)
    assert check_iso(iso).created == utc


def test_an_unset_creation_date_is_none(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "d.iso", {"hello.txt": b"hi"})
    _set_pvd_date(iso, b"0000000000000000", 0)
    assert check_iso(iso).created is None


def _udf_only(path: Path, sectors: int = 600) -> Path:
    """A UDF image without an ISO 9660 volume: the recognition sequence and two anchors."""
    data = bytearray(sectors * SECTOR)
    for index, ident in enumerate((b"BEA01", b"NSR02", b"TEA01")):
        data[(16 + index) * SECTOR : (16 + index) * SECTOR + 7] = b"\x00" + ident + b"\x01"
    for sector in (256, sectors - 1):
        struct.pack_into("<H", data, sector * SECTOR, 2)
        struct.pack_into("<I", data, sector * SECTOR + 12, sector)
    path.write_bytes(bytes(data))
    return path


def test_a_udf_only_image_is_called_udf(tmp_path: Path) -> None:
    fmt = check_iso(_udf_only(tmp_path / "u.iso"))
    assert (fmt.kind, fmt.volume_id, fmt.created) == ("UDF", "", None)
    assert fmt.declared_size == fmt.file_size == 600 * SECTOR


def test_plain_iso9660_names_lose_their_version(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "p.iso", {"dir/file.txt": b"data"}, rock_ridge=False)
    with open_iso(iso) as reader:
        assert reader.namespace == "ISO 9660"
        assert reader.files() == ["/DIR/FILE.TXT"]
        assert reader.read_bytes("/dir/file.txt") == b"data"


def test_a_missing_file_is_named_with_the_image(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "m.iso", {"hello.txt": b"hi"})
    with open_iso(iso) as reader, pytest.raises(BadInputError) as caught:
        reader.read_bytes("/repodata/repomd.xml")
    assert caught.value.message == f"{iso}: the image has no file /repodata/repomd.xml"
