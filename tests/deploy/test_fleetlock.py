"""The FleetLock client against a server that answers as airlock does, and misbehaves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from nestcustom.deploy import fleetlock
from nestcustom.deploy.fleetlock import PROBE_ID, FleetLock, LockError, classify, zincati_id
from nestcustom.errors import BadInputError
from tests.deploy.fleetlock_server import Semaphore, serve_fleetlock
from tests.deploy.test_reboot_wait import free_port


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Semaphore]]:
    monkeypatch.setattr(fleetlock, "HELD_POLL", (0.05, 0.1))
    semaphore = Semaphore(1)
    with serve_fleetlock(semaphore=semaphore) as url:
        yield url, semaphore


def fast(url: str, group: str = "default", timeout: float = 5.0) -> FleetLock:
    return FleetLock(url, group, timeout=timeout, backoff=0.01)


def test_a_slot_is_shared_and_reentrant(server: tuple[str, Semaphore]) -> None:
    url, _ = server
    lock = fast(url)
    lock.acquire("host-a", 1)
    lock.acquire("host-a", 1)  # re-entrant for the owner
    with pytest.raises(LockError, match="all 1 semaphore slots currently locked") as caught:
        lock.acquire("host-b", 0.3)
    assert caught.value.held
    lock.release("host-a")
    lock.acquire("host-b", 1)


def test_a_held_slot_is_waited_for_until_the_deadline_from_now(
    server: tuple[str, Semaphore],
) -> None:
    """airlock answers a full semaphore with 500 failed_lock: that is waiting, not a failure."""
    url, semaphore = server
    lock = fast(url)
    lock.acquire("host-a", 1)
    threading.Timer(0.5, lambda: lock.release("host-a")).start()
    started = time.monotonic()
    lock.acquire("host-b", 5)
    assert 0.4 < time.monotonic() - started < 3
    held = [r for r in semaphore.requests if r[:2] == ("pre-reboot", "host-b")]
    assert len(held) > 2  # asked again while waiting
    started = time.monotonic()
    with pytest.raises(LockError, match=r"no FleetLock reboot slot within 1 s in group default"):
        lock.acquire("host-c", 1)
    assert 0.9 < time.monotonic() - started < 2.5  # relative to the call, not to the run


@pytest.mark.parametrize(
    ("mode", "answer"),
    [
        ("down-etcd", "HTTP 500 failed_sem_init: failed to initialize semaphore manager"),
        ("garbage", "HTTP 500, not a FleetLock error: '<html>Bad Gateway</html>'"),
    ],
)
def test_a_failing_server_is_retried_a_few_times_then_named_with_its_answer(
    server: tuple[str, Semaphore], mode: str, answer: str
) -> None:
    url, semaphore = server
    semaphore.mode = mode
    started = time.monotonic()
    with pytest.raises(LockError) as caught:
        fast(url).acquire("host-a", 600)
    assert time.monotonic() - started < 5  # not the 600 s a held slot may be waited for
    assert caught.value.message.startswith(
        f"FleetLock server {url} (v1/pre-reboot, group default) failed after 4 tries: {answer}"
    )
    assert not caught.value.held
    assert caught.value.hint and "not other hosts holding slots" in caught.value.hint
    assert len(semaphore.requests) == fleetlock.SERVER_RETRIES + 1


def test_an_unreachable_server_is_a_server_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(LockError, match=r"failed after 4 tries: no answer: .*refused"):
        fast(url).check()


def test_a_slow_server_is_bounded_by_the_timeout(server: tuple[str, Semaphore]) -> None:
    url, semaphore = server
    semaphore.mode, semaphore.delay = "slow", 3.0
    started = time.monotonic()
    with pytest.raises(LockError, match="no answer: timed out"):
        fast(url, timeout=0.2).acquire("host-a", 600)
    assert time.monotonic() - started < 2.5


def test_a_refusal_is_final_and_names_the_group(server: tuple[str, Semaphore]) -> None:
    url, semaphore = server
    with pytest.raises(LockError) as caught:
        fast(url, group="workers").check()
    assert caught.value.message == (
        f"FleetLock server {url} (v1/steady-state, group workers) refused: "
        "HTTP 400 unknown_group: unknown group 'workers'"
    )
    assert len(semaphore.requests) == 1  # no retry of a refusal


def test_the_preflight_check_changes_nothing(server: tuple[str, Semaphore]) -> None:
    url, semaphore = server
    lock = fast(url)
    lock.acquire("host-a", 1)
    lock.check()
    assert semaphore.requests[-1] == ("steady-state", PROBE_ID, "default")
    assert semaphore.holders == {"host-a"}


def test_the_id_is_zincatis_node_id() -> None:
    """Zincati sends sd_id128_get_machine_app_specific(de35106b...) (zincati v0.0.32
    src/identity/mod.rs); this pair was computed by `systemd-id128 -a
    de35106b6ec24688b63afddaa156679b machine-id` on a machine with that machine id."""
    assert zincati_id("3d1219c7c4c5404aaa1f6d2a48adfda4") == "975228d46dc94622b9bbe16671e2b58d"
    assert zincati_id("not-a-machine-id") is None and zincati_id("") is None


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, b"", "granted"),
        (
            500,
            b'{"kind": "failed_lock", "value": "all 2 semaphore slots currently locked"}',
            "held",
        ),
        (409, b'{"kind": "busy", "value": "held"}', "held"),
        (
            500,
            b'{"kind": "failed_lock", "value": "conflict on semaphore detected, aborting"}',
            "server-error",
        ),
        (503, b'{"kind": "x", "value": ""}', "server-error"),  # value must be non-empty
        (400, b'{"kind": "invalid_client_identity", "value": "empty client ID"}', "refused"),
        (None, b"", "server-error"),
    ],
)
def test_answers_are_told_apart(status: int | None, body: bytes, kind: str) -> None:
    assert classify(status, body, "refused").kind == kind


def test_the_group_must_match_zincatis_rule() -> None:
    with pytest.raises(BadInputError, match="must match"):
        FleetLock("http://127.0.0.1/", "bad group!")
