"""RPM version comparison, as rpm's rpmvercmp orders versions."""

from __future__ import annotations

import pytest

from nestcustom.image.rpmversion import compare_evr, rpm_vercmp


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
    ],
)
def test_rpm_vercmp(a: str, b: str, order: int) -> None:
    assert rpm_vercmp(a, b) == order
    assert rpm_vercmp(b, a) == -order


def test_epoch_and_release() -> None:
    assert compare_evr("1:1.0-1", "0:2.0-1") == 1
    assert compare_evr("0:6.1-2", "6.1") == 0  # no release on one side: any release matches
    assert compare_evr("0:6.1-2", "6.1-10") == -1
