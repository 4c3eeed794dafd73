"""The FleetLock server on a real etcd: one budget for any number of servers, re-entrant
slots, leases that free a dead host's slot, fail-closed when etcd is away, rings that halt,
and Zincati's and nestcustom deploy's clients answered as airlock answers them."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nestcustom.deploy.fleetlock import FleetLock, LockError
from tests.fleet.conftest import EtcdServer, Serve, free_port


def post(
    base: str, path: str, client: dict[str, str], header: bool = True
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps({"client_params": client}).encode(),
        headers={"fleet-lock-protocol": "true"} if header else {},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def take(base: str, host: str, group: str = "default", **more: str) -> int:
    return post(base, "v1/pre-reboot", {"id": host, "group": group, **more})[0]


def release(base: str, host: str, group: str = "default", **more: str) -> int:
    return post(base, "v1/steady-state", {"id": host, "group": group, **more})[0]


def test_twenty_racing_hosts_through_two_servers_get_exactly_the_budget(fleetlock: Serve) -> None:
    one, two = fleetlock(slots={"default": 2}), fleetlock(slots={"default": 2})
    hosts = [f"host{n:02}" for n in range(20)]
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda h: take(one if int(h[4:]) % 2 else two, h), hosts))
    granted = [h for h, code in zip(hosts, codes, strict=True) if code == 200]
    assert len(granted) == 2, codes
    assert set(codes) <= {200, 500, 503}
    full = post(one, "v1/pre-reboot", {"id": "late", "group": "default"})
    assert full == (500, {"kind": "failed_lock", "value": "all 2 semaphore slots currently locked"})
    assert take(two, granted[0]) == 200  # re-entrant: a holder asking again keeps its slot
    assert release(one, granted[0]) == 200
    assert take(two, "late") == 200
    assert release(one, "never-held") == 200  # releasing nothing is no error (airlock's way)


def test_the_budget_outlives_an_etcd_restart_and_nothing_is_granted_while_it_is_away(
    etcd: EtcdServer, fleetlock: Serve
) -> None:
    base = fleetlock(slots={"default": 1})
    assert take(base, "a") == 200
    etcd.stop()
    code, body = post(base, "v1/pre-reboot", {"id": "b", "group": "default"})
    assert (code, body["kind"]) == (503, "etcd_unavailable")
    etcd.start()
    assert take(base, "b") == 500  # a still holds the one slot
    assert release(base, "a") == 200
    assert take(base, "b") == 200


def test_a_slot_a_dead_host_never_released_is_free_after_its_lease(fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 1}, slot_ttl=2)
    assert take(base, "dies-holding") == 200
    assert take(base, "waits") == 500
    time.sleep(4)  # etcd ends the lease (its clock ticks in whole seconds)
    assert take(base, "waits") == 200


def test_bad_requests_and_unknown_groups_are_refused_as_airlock_refuses_them(
    fleetlock: Serve,
) -> None:
    base = fleetlock(slots={"default": 1})
    assert post(base, "v1/pre-reboot", {"id": "a", "group": "default"}, header=False)[1][
        "kind"
    ] == ("invalid_client_identity")
    assert post(base, "v1/pre-reboot", {"id": "a", "group": "no such"})[1]["kind"] == (
        "invalid_client_identity"
    )
    code, body = post(base, "v1/pre-reboot", {"id": "a", "group": "workers"})
    assert (code, body["kind"]) == (400, "unknown_group")


def test_a_ring_with_too_many_rollbacks_gets_no_more_slots(fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 5}, halt_after=2, halt_window=60)
    for host in ("r1", "r2"):
        assert take(base, host, ring="canary") == 200
        assert release(base, host, ring="canary", health="rolled-back", digest="sha256:bad") == 200
    code, body = post(base, "v1/pre-reboot", {"id": "r3", "group": "default", "ring": "canary"})
    assert (code, body["kind"]) == (403, "ring_halted")
    assert take(base, "s1", ring="stable") == 200  # another ring goes on


def test_fleet_status_says_why_a_ring_is_halted_and_counts_rolled_back_hosts_apart(
    etcd: EtcdServer, fleetlock: Serve
) -> None:
    base = fleetlock(slots={"default": 5}, halt_after=2, halt_window=60)
    assert take(base, "ok1", ring="canary") == 200
    assert release(base, "ok1", ring="canary", health="ok", digest="sha256:bad") == 200
    for host in ("r1", "halted"):  # a host may be called "halted": it is no ring
        assert take(base, host, ring="canary") == 200
        assert release(base, host, ring="canary", health="rolled-back", digest="sha256:bad") == 200
    command = [sys.executable, "-m", "nestcustom", "fleet", "status", "--etcd", etcd.url]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert text.splitlines()[:3] == [
        "ring canary  sha256:bad  1 host(s)",
        "ring canary  sha256:bad  2 host(s) rolled back from it",
        "ring canary HALTED: 2 host(s) rolled back within 60 s (the server halts at 2): no slots "
        "until they age out; `nestcustom promote IMAGE --ring canary --undo` moves it back",
    ]
    document = json.loads(
        subprocess.run([*command, "--json"], capture_output=True, text=True, check=True).stdout
    )
    assert document["rings"] == [{"ring": "canary", "digest": "sha256:bad", "hosts": 1}]
    assert document["rolled_back"] == [{"ring": "canary", "from": "sha256:bad", "hosts": 2}]
    halted = document["halted"]["canary"]
    assert {k: halted[k] for k in ("rollbacks", "halt_after", "window", "hosts")} == {
        "rollbacks": 2, "halt_after": 2, "window": 60, "hosts": ["halted", "r1"],
    }  # fmt: skip


def test_nestcustom_deploys_client_takes_and_releases_through_it(fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 1})
    first, second = FleetLock(base, "default"), FleetLock(base, "default")
    first.check()
    first.acquire("host-a", wait=5)
    with pytest.raises(LockError) as held:
        second.acquire("host-b", wait=1)
    assert held.value.held  # told apart from a server failure
    first.release("host-a")
    second.acquire("host-b", wait=5)
    with pytest.raises(LockError, match="unknown_group"):
        FleetLock(base, "workers").check()


def test_fleet_status_shows_what_hosts_reported(etcd: EtcdServer, fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 2})
    assert take(base, "h1", ring="stable") == 200
    assert release(base, "h1", ring="stable", digest="sha256:aaa", health="ok") == 200
    assert take(base, "h2", ring="stable") == 200
    command = [sys.executable, "-m", "nestcustom", "fleet", "status", "--etcd", etcd.url]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "ring stable  sha256:aaa  1 host(s)" in text
    assert "  h2: rebooting (group default)" in text
    document = json.loads(
        subprocess.run([*command, "--json"], capture_output=True, text=True).stdout
    )
    assert document["ok"] is True and set(document["hosts"]) == {"h1", "h2"}


def test_serve_refuses_to_start_without_etcd(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "fleetlock",
            "serve",
            "--etcd",
            f"http://127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot be reached" in done.stderr and "Traceback" not in done.stderr


def test_serve_answers_until_sigterm_then_says_what_it_left(etcd: EtcdServer) -> None:
    import signal

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nestcustom", "fleetlock", "serve", "--etcd", etcd.url,
         "--listen", f"127.0.0.1:{port}", "--group", "default=1", "--group", "workers=2"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert server.stderr is not None
    assert "FleetLock on http://127.0.0.1:" in server.stderr.readline()
    base = f"http://127.0.0.1:{port}/"
    assert take(base, "w1", group="workers") == 200
    assert take(base, "w2", group="workers") == 200
    assert take(base, "w3", group="workers") == 500
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 143
    assert "interrupted by SIGTERM: the FleetLock server stopped" in server.stderr.read()


def raw_post(base: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """(status, Content-Type, JSON answer) of a POST to pre-reboot with exactly this body."""
    host, port = base.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", "/v1/pre-reboot", body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), json.loads(answer.read())
    finally:
        connection.close()


GOOD = {"client_params": {"id": "h1", "group": "default"}}


@pytest.mark.parametrize(
    ("body", "headers", "said"),
    [
        (json.dumps(GOOD).encode(), {}, "missing header fleet-lock-protocol: true"),
        (b"", {"fleet-lock-protocol": "true"}, "missing or oversized body"),
        (b"x" * (64 * 1024 + 1), {"fleet-lock-protocol": "true"}, "missing or oversized body"),
        (b"[1]", {"fleet-lock-protocol": "true"}, 'body is not {"client_params": {...}}: '),
        (
            json.dumps({"client_params": {"group": "default"}}).encode(),
            {"fleet-lock-protocol": "true"},
            "client_params.id is missing or not an id",
        ),
        (
            json.dumps({"client_params": {"id": "h1", "group": "a/b"}}).encode(),
            {"fleet-lock-protocol": "true"},
            "client_params.group is missing or not ^[a-zA-Z0-9.-]+$",
        ),
    ],
)
def test_a_bad_request_is_told_what_is_wrong_and_takes_no_slot(
    fleetlock: Serve, body: bytes, headers: dict[str, str], said: str
) -> None:
    base = fleetlock()
    status, kind, answer = raw_post(base, body, headers)
    assert (status, kind, answer["kind"]) == (400, "application/json", "invalid_client_identity")
    assert answer["value"].startswith(said)
    assert take(base, "h2") == 200  # the one slot is still free


def test_a_granted_slot_answers_an_empty_json_object(fleetlock: Serve) -> None:
    base = fleetlock()
    body = json.dumps(GOOD).encode()
    assert raw_post(base, body, {"Fleet-Lock-Protocol": "TRUE"}) == (200, "application/json", {})
