"""The ISO format check and reading without mounting, on small images made with pycdlib."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nestcustom.base.isofile import check_iso, open_iso
from nestcustom.base.repos import copy_metadata, read_media
from nestcustom.errors import BadInputError
from tests.base.isomaker import TREEINFO, make_iso, repo_files


def test_a_complete_image_passes(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "ok.iso", {"hello.txt": b"hi"})
    fmt = check_iso(iso)
    assert fmt.kind == "ISO 9660"
    assert fmt.volume_id == "NCTEST"
    assert fmt.declared_size == fmt.file_size == iso.stat().st_size


def test_udf_is_recognised(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "udf.iso", {"hello.txt": b"hi"}, udf=True)
    assert check_iso(iso).kind == "ISO 9660 + UDF"


def test_a_zip_renamed_iso_is_refused_and_named(tmp_path: Path) -> None:
    fake = tmp_path / "NewStart.iso"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("README", "x" * 100_000)
    with pytest.raises(BadInputError, match=r"not an ISO 9660 or UDF image.*ZIP archive"):
        check_iso(fake)


def test_a_truncated_image_is_refused_with_both_sizes(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "t.iso", {"big.bin": bytes(300_000)})
    size = iso.stat().st_size
    with iso.open("r+b") as handle:
        handle.truncate(size - 100_000)
    with pytest.raises(
        BadInputError, match=rf"truncated: .* declares {size} bytes, the file has {size - 100_000}"
    ):
        check_iso(iso)


def test_appended_data_is_refused(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "a.iso", {"x": b"x"})
    with iso.open("ab") as handle:
        handle.write(bytes(5 * 1024 * 1024))
    with pytest.raises(BadInputError, match="data was appended"):
        check_iso(iso)


def test_a_directory_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="is a directory"):
        check_iso(tmp_path)
    with pytest.raises(BadInputError, match="no such file"):
        check_iso(tmp_path / "missing.iso")


def test_a_tiny_file_is_refused(tmp_path: Path) -> None:
    small = tmp_path / "small.iso"
    small.write_bytes(b"\0" * 1000)
    with pytest.raises(BadInputError, match="too small"):
        check_iso(small)


@pytest.mark.parametrize(
    "names",
    [
        {"rock_ridge": True},
        {"rock_ridge": False, "joliet": True},
        {"rock_ridge": False, "udf": True},
    ],
)
def test_files_are_read_by_their_long_names(tmp_path: Path, names: dict[str, bool]) -> None:
    iso = make_iso(tmp_path / "n.iso", {"BaseOS/Packages/bash-5.1-1.x86_64.rpm": b"rpm!"}, **names)
    with open_iso(iso) as reader:
        assert reader.files() == ["/BaseOS/Packages/bash-5.1-1.x86_64.rpm"]
        assert reader.read_bytes("/BaseOS/Packages/bash-5.1-1.x86_64.rpm") == b"rpm!"
        written = reader.extract(
            "BaseOS/Packages/bash-5.1-1.x86_64.rpm", tmp_path / "out" / "b.rpm"
        )
    assert written == 4
    assert (tmp_path / "out" / "b.rpm").read_bytes() == b"rpm!"


def test_treeinfo_variants_are_the_repositories(tmp_path: Path) -> None:
    files = {
        ".treeinfo": TREEINFO,
        "RPM-GPG-KEY-newstart": b"key",
        **repo_files("BaseOS"),
        **repo_files("AppStream"),
    }
    iso = make_iso(tmp_path / "t.iso", files)
    with open_iso(iso) as reader:
        media = read_media(reader, check_iso(iso))
        local = copy_metadata(reader, media, tmp_path / "meta")
    assert media.layout == "treeinfo"
    assert [r.id for r in media.repos] == ["AppStream", "BaseOS"]
    assert media.repos[0].has_comps
    # changelogs (other.xml) are not needed to resolve: not copied
    assert media.repos[1].metadata == (
        "/BaseOS/repodata/repomd.xml",
        "/BaseOS/repodata/primary.xml.gz",
        "/BaseOS/repodata/comps.xml",
    )
    assert media.keys == ("/RPM-GPG-KEY-newstart",)
    assert media.release.version == "6.06"
    assert media.release.source_date_epoch == 1699617600
    assert (local["BaseOS"] / "repodata" / "primary.xml.gz").read_bytes() == b"primary"


def test_a_root_repository_without_treeinfo(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "r.iso", repo_files())
    with open_iso(iso) as reader:
        media = read_media(reader, check_iso(iso))
    assert media.layout == "root repodata"
    assert [(r.id, r.path) for r in media.repos] == [("dvd", "")]
    # no .treeinfo: the image's own date is the clock
    assert media.release.source_date_epoch > 0


def test_an_image_without_repositories_is_refused(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "boot.iso", {"isolinux/README": b"boot"})
    with open_iso(iso) as reader, pytest.raises(BadInputError, match="holds no package repository"):
        read_media(reader, check_iso(iso))


def test_a_variant_without_its_repository_is_refused(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "v.iso", {".treeinfo": TREEINFO, **repo_files("BaseOS")})
    with open_iso(iso) as reader, pytest.raises(BadInputError, match="variant AppStream"):
        read_media(reader, check_iso(iso))


def test_repomd_naming_a_missing_file_is_refused(tmp_path: Path) -> None:
    files = repo_files()
    del files["repodata/primary.xml.gz"]
    iso = make_iso(tmp_path / "m.iso", files)
    with open_iso(iso) as reader, pytest.raises(BadInputError, match="not on the image"):
        read_media(reader, check_iso(iso))


@pytest.mark.parametrize("repository", ["../BaseOS", "BaseOS/../..", "/etc"])
def test_a_treeinfo_repository_outside_the_tree_is_refused(tmp_path: Path, repository: str) -> None:
    treeinfo = TREEINFO.replace(b"repository = BaseOS", f"repository = {repository}".encode())
    iso = make_iso(
        tmp_path / "t.iso",
        {".treeinfo": treeinfo, **repo_files("BaseOS"), **repo_files("AppStream")},
    )
    with open_iso(iso) as reader, pytest.raises(BadInputError, match="outside the image's tree"):
        read_media(reader, check_iso(iso))


@pytest.mark.parametrize(
    "href", ["../primary.xml.gz", "/repodata/primary.xml.gz", "repodata/../../x"]
)
def test_a_repomd_location_outside_its_repository_is_refused(tmp_path: Path, href: str) -> None:
    files = repo_files()
    files["repodata/repomd.xml"] = files["repodata/repomd.xml"].replace(
        b"repodata/primary.xml.gz", href.encode()
    )
    iso = make_iso(tmp_path / "m.iso", files)
    with open_iso(iso) as reader, pytest.raises(BadInputError, match="outside its repository"):
        read_media(reader, check_iso(iso))


def test_a_package_location_outside_the_repository_is_refused(tmp_path: Path) -> None:
    from nestcustom.base.packages import extract_packages
    from nestcustom.base.resolve import Package

    iso = make_iso(tmp_path / "p.iso", repo_files())
    evil = Package(
        "bash",
        0,
        "5.1",
        "1",
        "x86_64",
        "dvd",
        "../../etc/cron.d/x",
        "../../etc/cron.d/x",
        "sha256",
        "0" * 64,
        1,
        1,
    )
    with (
        open_iso(iso) as reader,
        pytest.raises(BadInputError, match="point outside the repository"),
    ):
        extract_packages(reader, [evil], tmp_path / "work")
    assert not (tmp_path / "etc").exists()
