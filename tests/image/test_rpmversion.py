"""RPM version comparison, as rpm's rpmvercmp orders versions."""

from __future__ import annotations

import pytest

from nestcustom.image.rpmversion import compare_evr, rpm_file_nvr, rpm_vercmp


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0.1", "2.0", 1),
        ("1.10", "1.9", 1),
        ("1.0a", "1.0", 1),
        ("1.0", "1.0.0", -1),
        ("010", "10", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.0.1", -1),
        ("a", "1", -1),
        ("5.10.0", "5.9.99", 1),
        ("1.0B", "1.0", 1),  # capitals are letters too
        ("1.0^git1", "1.0^git2", -1),  # after two carets, the rest still counts
        ("1.0^git1", "1.0A", -1),  # a caret sorts before any segment, not by its ASCII code
    ],
)
def test_rpm_vercmp(a: str, b: str, order: int) -> None:
    assert rpm_vercmp(a, b) == order
    assert rpm_vercmp(b, a) == -order


def test_epoch_and_release() -> None:
    assert compare_evr("1:1.0-1", "0:2.0-1") == 1
    assert compare_evr("0:6.1-2", "6.1") == 0  # no release on one side: any release matches
    assert compare_evr("0:6.1-2", "6.1-10") == -1
    assert compare_evr("6.1", "0:6.1-2") == 0  # either side may lack the release
    assert compare_evr("0:2.0", "1:1.0") == -1  # -1, 0 or 1, as rpmvercmp answers


@pytest.mark.parametrize(
    ("url", "nvr"),
    [
        ("https://r.example.com/x/agent-1.2-3.el8.x86_64.rpm", ("agent", "1.2", "3.el8")),
        ("file:///srv/rpms/python3-foo-2.0.1-1.noarch.rpm", ("python3-foo", "2.0.1", "1")),
        (
            "https://r.example.com/kernel-rt-5.10.0-1.rt.aarch64.rpm",
            ("kernel-rt", "5.10.0", "1.rt"),
        ),
        ("https://r.example.com/a%2Bb-1-1.x86_64.rpm", ("a+b", "1", "1")),  # URL-quoted
        ("https://r.example.com/latest.rpm", None),
        ("https://r.example.com/agent-1.2.x86_64.rpm", None),  # no release
    ],
)
def test_the_nvr_of_an_rpm_url(url: str, nvr: tuple[str, str, str] | None) -> None:
    assert rpm_file_nvr(url) == nvr
