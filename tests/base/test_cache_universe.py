"""The per-ISO cache: a second build from the same ISO reuses its checked bootstrap and metadata,
gives the image it would have given without the cache, and a changed ISO is a new entry."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.base.conftest import nestcustom, podman
from tests.universe.iso.build import Iso

pytestmark = pytest.mark.universe

SMALL = "bash,coreutils,rpm"


def build(iso: Path, cache: Path, *args: str) -> dict[str, object]:
    done = nestcustom(
        "base", "from-iso", str(iso), "--packages", SMALL, "--json", *args,
        env={"NESTCUSTOM_CACHE_DIR": str(cache)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout)
    report["stderr"] = done.stderr
    return report


@pytest.fixture
def images() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for image in made:
        podman("rmi", "-f", image)


def test_a_second_variant_reuses_the_checked_bootstrap_and_the_metadata(
    iso_el8: Iso, tmp_path: Path, images: list[str]
) -> None:
    cache = tmp_path / "cache"
    first = build(iso_el8.path, cache, "--variant", "standard")
    second = build(iso_el8.path, cache, "--variant", "optimized")
    uncached = build(iso_el8.path, cache, "--variant", "optimized", "--no-cache")
    images += [str(r["image_id"]) for r in (first, second, uncached)]
    assert first["from_cache"] == []
    assert "checking the ISO's rpm with the host's rpm" in str(first["stderr"])
    assert second["from_cache"] == ["metadata", "bootstrap"]
    assert "checking the ISO's rpm" not in str(second["stderr"])
    assert uncached["from_cache"] == []
    assert second["image_id"] == uncached["image_id"]  # the cache changes nothing in the image
    iso = first["iso"]
    assert isinstance(iso, dict)
    (entry,) = (cache / "base").glob("iso-*")
    assert entry.name.startswith(f"iso-{iso['sha256']}-")
    assert (cache.stat().st_mode & 0o777) == 0o700
    assert len(list(entry.glob("bootstrap-*"))) == 1 and (entry / "verified.json").is_file()


def test_a_changed_iso_is_a_new_entry(
    iso_el8: Iso, iso_treeinfo: Iso, tmp_path: Path, images: list[str]
) -> None:
    cache, dvd = tmp_path / "cache", tmp_path / "dvd.iso"
    shutil.copyfile(iso_el8.path, dvd)
    el8 = build(dvd, cache)
    shutil.copyfile(iso_treeinfo.path, dvd)  # the same path, other content
    other = build(dvd, cache)
    images += [str(el8["image_id"]), str(other["image_id"])]
    assert el8["rpmdb"] == {**el8["rpmdb"], "backend": "bdb"}  # type: ignore[dict-item]
    assert other["from_cache"] == []
    assert other["rpmdb"]["backend"] == "sqlite"  # type: ignore[index]
    assert len(list((cache / "base").glob("iso-*"))) == 2
    again = build(dvd, cache)
    assert again["from_cache"] == ["metadata", "bootstrap"]
    assert again["image_id"] == other["image_id"]


def test_a_cache_others_can_write_to_is_not_used(
    iso_treeinfo: Iso, tmp_path: Path, images: list[str]
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    report = build(iso_treeinfo.path, cache)
    images.append(str(report["image_id"]))
    assert report["from_cache"] == []
    assert any("the cache is not used" in w for w in report["warnings"])  # type: ignore[attr-defined]
    assert list(cache.iterdir()) == []
