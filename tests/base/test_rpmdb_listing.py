"""How a normalized rpm database is proved to be the same database: read three ways
(every header, the Name index, the Basenames index) by a real rpm, and compared."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from nestcustom.base.rpmdbnorm import NormalizeError, _listing, check_same
from tests.gitops.rpms import Pkg, build_rpms


@pytest.fixture(scope="module")
def dbpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("listing")
    rpms = build_rpms([Pkg("nc-b", "2.0", "1"), Pkg("nc-a", "1.0", "3")], work / "rpms", work)
    db = work / "db"
    subprocess.run(
        ["rpm", "--dbpath", str(db), "-i", "--justdb", "--nodeps", "--noscripts", *map(str, rpms)],
        check=True,
        capture_output=True,
    )
    return str(db)


def run(argv: Sequence[str]) -> bytes:
    return subprocess.run(list(argv), check=True, capture_output=True).stdout


def test_the_database_is_read_by_header_name_and_file(dbpath: str) -> None:
    every, by_name, by_file = _listing(run, dbpath, ["/usr/share/nc-gitops/nc-a"])
    lines = every.split(b"\n")
    assert [line.split(b"\t")[0] for line in lines] == [
        b"nc-a-0:1.0-3.noarch",
        b"nc-b-0:2.0-1.noarch",
    ]
    assert all(len(line.split(b"\t")) == 3 for line in lines)  # + header SHA1 and MD5
    assert by_name.splitlines() == lines  # both names asked, sorted: the same headers
    assert by_file.splitlines() == [lines[0]]  # the one package owning the sampled file


def test_a_difference_names_the_first_line_that_changed() -> None:
    check_same(b"a\nb\n", b"a\nb\n", "every header")
    with pytest.raises(NormalizeError) as raised:
        check_same(b"a\nb\nc\n", b"a\nB\nc\n", "the Name index")
    assert str(raised.value) == ("the normalized rpm database differs (the Name index): 'b' -> 'B'")
    with pytest.raises(NormalizeError) as raised:
        check_same(b"a\nb\n", b"a\n", "the Basenames index")
    assert str(raised.value) == (
        "the normalized rpm database differs (the Basenames index): 2 lines -> 1 lines"
    )
