"""What the optimized variant says it left out, read from real packages' headers: one
RPM (built here by rpmbuild) holds a file of each category, plus files it keeps."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nestcustom.base.slim import Savings, left_out

SPEC = """\
Name: nc-slim
Version: 1
Release: 1
Summary: one file of each kind
License: MIT
BuildArch: noarch
%description
x
%install
cd %{buildroot}
mkdir -p usr/share/doc/nc-slim usr/share/man/man1 usr/share/info usr/lib/debug usr/bin \\
    usr/share/locale/de/LC_MESSAGES usr/share/locale/en_GB/LC_MESSAGES usr/src/debug
head -c 100 /dev/zero > usr/share/doc/nc-slim/README
head -c 200 /dev/zero > usr/share/man/man1/nc.1
head -c 250 /dev/zero > usr/share/info/nc.info
head -c 300 /dev/zero > usr/share/locale/de/LC_MESSAGES/nc.mo
head -c 50 /dev/zero > usr/share/locale/en_GB/LC_MESSAGES/nc.mo
head -c 400 /dev/zero > usr/lib/debug/nc.debug
head -c 450 /dev/zero > usr/src/debug/nc.c
head -c 500 /dev/zero > usr/bin/nc
ln -s nc usr/bin/nc-link
%files
%doc /usr/share/doc/nc-slim/README
/usr/share/man/man1/nc.1
/usr/share/info/nc.info
%lang(de) /usr/share/locale/de/LC_MESSAGES/nc.mo
%lang(en_GB) /usr/share/locale/en_GB/LC_MESSAGES/nc.mo
/usr/lib/debug/nc.debug
/usr/src/debug/nc.c
/usr/bin/nc
/usr/bin/nc-link
"""


@pytest.fixture(scope="module")
def rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("slim")
    (top / "s.spec").write_text(SPEC)
    subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}",
         "--define", "__os_install_post %{nil}", "--define", "debug_package %{nil}",
         "--define", "_build_id_links none", str(top / "s.spec")],
        check=True, capture_output=True,
    )  # fmt: skip
    return next((top / "RPMS").rglob("*.rpm"))


def test_each_category_counts_its_regular_files_bytes(rpm: Path) -> None:
    # English locales, programs and symlinks are kept; man and info pages count as such
    # even though rpm also flags them as documentation.
    assert left_out([rpm]) == {
        "docs": (100, 1),
        "man_info": (450, 2),
        "locales": (300, 1),
        "debug": (850, 2),
    }


def test_packages_are_queried_in_batches_and_summed(rpm: Path) -> None:
    totals = left_out([rpm] * 201)  # 200 per rpm call: two calls, every copy counted
    assert totals["docs"] == (100 * 201, 201)
    assert left_out([]) == {}


def test_savings_are_named_as_the_report_shows_them() -> None:
    savings = Savings(docs=(1, 2), man_info=(3, 4), locales=(5, 6), debug=(7, 8), logs=(9, 10))
    assert savings.as_dict() == {
        "docs": {"bytes": 1, "files": 2},
        "man/info": {"bytes": 3, "files": 4},
        "locales": {"bytes": 5, "files": 6},
        "debug info": {"bytes": 7, "files": 8},
        "caches": {"bytes": 0, "files": 0},
        "logs": {"bytes": 9, "files": 10},
    }
