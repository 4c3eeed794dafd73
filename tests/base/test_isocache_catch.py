"""The ISO cache's index when an ISO changed under a build: the stale entry goes, nothing is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.base import isocache
from nestcustom.errors import NestcustomError


def test_an_iso_that_changed_during_the_build_drops_its_entry_and_stops(tmp_path: Path) -> None:
    cache = isocache.open_cache(tmp_path / "cache")
    assert cache is not None
    iso = tmp_path / "NewStart-V6.06-x86_64-dvd.iso"
    iso.write_bytes(b"first")
    early, late = "aa" * 32, "bb" * 32
    entry = cache.entry(early)
    (entry.metadata).mkdir()
    isocache.remember(cache, iso, early)
    assert isocache.known_sha256(cache, iso) == early
    with pytest.raises(NestcustomError) as caught:
        isocache.check_and_remember(cache, iso, early, late)
    assert caught.value.message.startswith(f"{iso} is not the file an earlier build cached")
    assert "aaaaaaaaaaaa..." in caught.value.message
    assert not entry.path.exists()  # its content was not what the index said
    assert isocache.known_sha256(cache, iso) is None  # and the index no longer says it
    assert late not in cache.index.read_text()  # nothing of this build is remembered


def test_an_unchanged_iso_is_remembered(tmp_path: Path) -> None:
    cache = isocache.open_cache(tmp_path / "cache")
    assert cache is not None
    iso = tmp_path / "dvd.iso"
    iso.write_bytes(b"same")
    sha = "cc" * 32
    cache.entry(sha)
    isocache.check_and_remember(cache, iso, None, sha)
    assert isocache.known_sha256(cache, iso) == sha
    isocache.check_and_remember(cache, iso, sha, sha)
    assert isocache.known_sha256(cache, iso) == sha
