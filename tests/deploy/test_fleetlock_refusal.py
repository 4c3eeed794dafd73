"""A FleetLock server that refuses the group tells the user what to check."""

from __future__ import annotations

import pytest

from nestcustom.deploy.fleetlock import FleetLock, LockError
from tests.deploy.fleetlock_server import Semaphore, serve_fleetlock


def test_a_refused_group_says_to_check_the_url_and_group() -> None:
    with serve_fleetlock(semaphore=Semaphore(1)) as url, pytest.raises(LockError) as caught:
        FleetLock(url, "workers", backoff=0.01).check()
    assert caught.value.hint == "check --fleetlock and --group against the server's configuration"
