"""What the base stage reads from an ISO's .treeinfo (the release's name and date) and the
hints of refused media, and what cleaning a root leaves of the account files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.base.isofile import check_iso, open_iso
from nestcustom.base.packages import extract_packages
from nestcustom.base.repos import read_media
from nestcustom.base.resolve import Package
from nestcustom.base.slim import clean_root
from nestcustom.base.variants import STANDARD
from nestcustom.errors import BadInputError
from tests.base.isomaker import TREEINFO, make_iso, repo_files

DAY = 1699617600 // 86400


def _tree_iso(tmp_path: Path, treeinfo: bytes) -> Path:
    files = {".treeinfo": treeinfo, **repo_files("BaseOS"), **repo_files("AppStream")}
    return make_iso(tmp_path / "t.iso", files)


def test_the_release_is_named_by_treeinfo_not_the_volume_id(tmp_path: Path) -> None:
    iso = _tree_iso(tmp_path, TREEINFO)
    with open_iso(iso) as reader:
        release = read_media(reader, check_iso(iso)).release
    assert (release.name, release.version) == ("NewStart CGS Linux", "6.06")


def test_without_treeinfo_the_release_is_named_by_the_volume_id(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "r.iso", repo_files())
    with open_iso(iso) as reader:
        release = read_media(reader, check_iso(iso)).release
    assert (release.name, release.version) == ("NCTEST", "unknown")


def test_the_trees_build_timestamp_wins_over_the_generals(tmp_path: Path) -> None:
    treeinfo = TREEINFO.replace(b"build_timestamp = 1699617600", b"build_timestamp = 1700000000")
    iso = _tree_iso(tmp_path, treeinfo)
    with open_iso(iso) as reader:
        release = read_media(reader, check_iso(iso)).release
    assert release.source_date_epoch == 1700000000


def test_repomd_naming_a_missing_file_says_the_image_is_damaged(tmp_path: Path) -> None:
    files = repo_files()
    del files["repodata/primary.xml.gz"]
    iso = make_iso(tmp_path / "m.iso", files)
    with open_iso(iso) as reader, pytest.raises(BadInputError) as caught:
        read_media(reader, check_iso(iso))
    assert caught.value.message == (
        f"{iso}: /repodata/repomd.xml names repodata/primary.xml.gz, which is not on the image"
    )
    assert caught.value.hint == "the image is incomplete or damaged"


def test_a_package_outside_the_repository_asks_whether_the_iso_is_genuine(
    tmp_path: Path,
) -> None:
    iso = make_iso(tmp_path / "p.iso", repo_files())
    path = "../../etc/cron.d/x"
    evil = Package(
        "bash", 0, "5.1", "1", "x86_64", "dvd", path, path, "sha256", "0" * 64, 1, 1
    )  # fmt: skip
    with open_iso(iso) as reader, pytest.raises(BadInputError) as caught:
        extract_packages(reader, [evil], tmp_path / "work")
    assert caught.value.hint == "is the ISO what the vendor published?"


def _accounts(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/shadow").write_text("root:!:99999:0:99999:7:::\ncore:*:19000:0:99999:7:::\n")
    # gshadow's third field is the group's administrators, not a date; no final newline
    (root / "etc/gshadow").write_text("wheel:!:99999:core")
    for name in ("passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-", ".pwd.lock"):
        (root / "etc" / name).write_text("x\n")


def test_cleaning_clamps_shadow_dates_and_removes_account_backups(tmp_path: Path) -> None:
    _accounts(tmp_path)
    clean_root(
        tmp_path,
        owned=frozenset(),
        dbpath="/var/lib/rpm",
        variant=STANDARD,
        source_date_epoch=1699617600,
    )
    assert (tmp_path / "etc/shadow").read_text() == (
        f"root:!:{DAY}:0:99999:7:::\ncore:*:19000:0:99999:7:::\n"
    )
    assert (tmp_path / "etc/gshadow").read_text() == "wheel:!:99999:core"
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == [
        "gshadow",
        "machine-id",
        "shadow",
    ]
