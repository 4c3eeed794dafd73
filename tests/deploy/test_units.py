"""Deploy pieces that need no host: inventory, status model, journal, ssh errors, FleetLock."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.deploy.fleetlock import FleetLock, LockError
from nestcustom.deploy.hoststatus import parse_status
from nestcustom.deploy.journal import Journal, read_journal
from nestcustom.deploy.ssh import Failure, classify
from nestcustom.errors import BadInputError
from tests.deploy.fleetlock_server import serve_fleetlock

STATUS = {
    "deployments": [
        {
            "id": "nestos-bbb.0",
            "osname": "nestos",
            "checksum": "bbb",
            "serial": 0,
            "booted": False,
            "staged": True,
            "pinned": False,
            "unlocked": "none",
            "timestamp": 2,
            "version": "22.03-LTS-SP2.20230922.0",
            "container-image-reference": "ostree-unverified-registry:r/x@sha256:" + "1" * 64,
            "container-image-reference-digest": "sha256:" + "1" * 64,
        },
        {
            "id": "nestos-aaa.0",
            "osname": "nestos",
            "checksum": "aaa",
            "serial": 0,
            "booted": True,
            "staged": False,
            "pinned": False,
            "unlocked": "none",
            "timestamp": 1,
            "version": "22.03-LTS-SP2.20230922.0",
            "origin": "openEuler:openEuler/x86_64/nestos/stable",
        },
    ],
    "transaction": None,
    "cached-update": None,
    "update-driver": {"driver-name": "Zincati", "driver-sd-unit": "zincati.service"},
}


def test_status_model() -> None:
    status = parse_status(json.dumps(STATUS))
    assert (
        status.booted is not None
        and status.booted.origin == "openEuler:openEuler/x86_64/nestos/stable"
    )
    assert status.staged is not None and status.staged.image_digest == "sha256:" + "1" * 64
    assert status.rollback is None
    assert status.update_driver == "Zincati (zincati.service)"
    assert not status.transaction


def test_journal_replay_and_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, {"target": "r/x@sha256:1"})
    journal.record("a", "preflight", "ok")
    journal.record("a", "done", "ok", outcome="updated", before="x", after="y")
    journal.record("b", "rebase", "start")
    with path.open("a") as handle:
        handle.write('{"host": "b", "st')  # cut off by the interruption
    replay = read_journal(path)
    assert replay.header == {"target": "r/x@sha256:1"}
    assert set(replay.finished) == {"a"}
    assert replay.last["b"].step == "rebase"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("stderr", "failure"),
    [
        (
            "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n",
            Failure.HOST_KEY_CHANGED,
        ),
        (
            "No ED25519 host key is known for [127.0.0.1]:2201 and you have requested strict checking.\n"
            "Host key verification failed.\n",
            Failure.HOST_KEY_UNKNOWN,
        ),
        ("root@127.0.0.1: Permission denied (publickey).\n", Failure.AUTH),
        ("ssh: connect to host 127.0.0.1 port 9: Connection refused\n", Failure.UNREACHABLE),
    ],
)
def test_ssh_failures_are_classified(stderr: str, failure: Failure) -> None:
    assert classify(stderr) is failure


@pytest.fixture
def fleetlock_url() -> Iterator[str]:
    with serve_fleetlock() as url:
        yield url


def test_fleetlock_slot_is_shared_and_reentrant(fleetlock_url: str) -> None:
    lock = FleetLock(fleetlock_url, "workers")
    lock.acquire("host-a", timeout=1)
    lock.acquire("host-a", timeout=1)  # re-entrant for the owner
    with pytest.raises(LockError, match="failed_lock: all 1 semaphore slots are held"):
        lock.acquire("host-b", timeout=0.5, poll=0.1)
    lock.release("host-a")
    lock.acquire("host-b", timeout=1)


def test_fleetlock_group_must_match_protocol() -> None:
    with pytest.raises(BadInputError, match="must match"):
        FleetLock("http://127.0.0.1/", "bad group!")


def test_deploy_refuses_a_malformed_reference_before_any_network(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  - {name: a, address: 127.0.0.1, port: 9}\n")
    result = subprocess.run(
        [sys.executable, "-m", "nestcustom", "deploy", "-i", str(inventory), "bad ref!"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "error: 'bad ref!' is not a valid image reference" in result.stderr
    assert "hint: write REGISTRY/NAME:TAG" in result.stderr


def test_ssh_destination_follows_double_dash(tmp_path: Path) -> None:
    from nestcustom.deploy.inventory import Host
    from nestcustom.deploy.ssh import Connection, SshOptions

    argv = Connection(Host("a", "a.example", user="core"), SshOptions(tmp_path)).ssh_argv()
    assert argv[-2:] == ["--", "a.example"]
    assert argv.count("--") == 1
