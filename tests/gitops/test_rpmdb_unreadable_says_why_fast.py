"""A database the host's rpm cannot read: the error says what rpm said (sqlite's own reason),
not only that it failed, fast: a real rpm on a file that is no sqlite database."""

from __future__ import annotations

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image.dblayers import FoundDb
from nestcustom.image.rpmdb import read_packages


def test_rpms_own_reason_is_in_the_error() -> None:
    broken = FoundDb("var/lib/rpm", "sqlite", {"rpmdb.sqlite": b"not a database" * 100})
    with pytest.raises(NestcustomError) as raised:
        read_packages(broken)
    message = raised.value.message
    assert message.startswith("the host's rpm cannot read the image's RPM database (sqlite, ")
    assert "file is not a database" in message  # sqlite's reason, as rpm reports it
    assert "cannot open Packages database in " in message  # rpm's last line: the tail is kept
