"""Step 3 of rpmdbnorm on a database directory as `rpmdb --rebuilddb` leaves it: every
Berkeley DB file normalized, region and lock files dropped, other files kept as they are."""

from __future__ import annotations

import os
from pathlib import Path

from nestcustom.base import bdbpages, rpmdbnorm
from tests.base.test_rpmdb_units import EPOCH, PAGE, database


def test_the_rebuilt_database_keeps_its_files_normalized_and_drops_the_rest(
    tmp_path: Path,
) -> None:
    dbdir = tmp_path / "rpmdb"
    dbdir.mkdir()
    packages = database(dbdir, "Packages", os.urandom(20))
    names = database(dbdir, "Name", os.urandom(20))
    (dbdir / "__db.001").write_bytes(os.urandom(64))  # Berkeley DB's region files
    (dbdir / ".dbenv.lock").write_text("")
    (dbdir / ".rpm.lock").write_text("")
    (dbdir / "Triggername").write_bytes(b"not a database")  # not ours to rewrite
    kept = rpmdbnorm.normalize_files(dbdir, EPOCH)
    assert kept == ["Name", "Packages", "Triggername"]
    assert sorted(p.name for p in dbdir.iterdir()) == kept
    for path in (packages, names):
        data = path.read_bytes()
        assert data[52:72] == bdbpages.file_id(path.name, EPOCH)
        assert data[3 * PAGE + 26 : 4 * PAGE] == bytes(PAGE - 26)  # the free page, zeroed
    assert (dbdir / "Triggername").read_bytes() == b"not a database"


def test_normalizing_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        directory.mkdir()
        database(directory, "Packages", os.urandom(20))
        rpmdbnorm.normalize_files(directory, EPOCH)
    assert (first / "Packages").read_bytes() == (second / "Packages").read_bytes()
