"""Version constraints in `tests.packages.present` are judged as rpm judges them."""

from __future__ import annotations

import pytest

from nestcustom.image.rpmversion import satisfies


@pytest.mark.parametrize(
    ("installed", "op", "wanted", "expected"),
    [
        # equal versions: the boundary every operator must get right
        ("0:5.10-1", "=", "5.10", True),
        ("0:5.10-1", "<=", "5.10", True),
        ("0:5.10-1", ">=", "5.10", True),
        ("0:5.10-1", "<", "5.10", False),
        ("0:5.10-1", ">", "5.10", False),
        ("0:5.10-1", "=", "5.10-1", True),
        ("0:5.10-1", "=", "5.10-2", False),
        ("0:5.10-2", ">=", "5.10-1", True),
        ("0:5.10-2", "<=", "5.10-1", False),
        # versions compare by segments, not as text or floats
        ("0:5.9-1", "<", "5.10", True),
        ("0:5.10-1", ">", "5.9", True),
        ("0:1.0~rc1-1", "<", "1.0", True),
        # the epoch wins over everything else
        ("1:1.0-1", ">", "9.9", True),
        ("0:9.9-1", "<", "1:1.0", True),
    ],
)
def test_constraint(installed: str, op: str, wanted: str, expected: bool) -> None:
    assert satisfies(installed, op, wanted) is expected
