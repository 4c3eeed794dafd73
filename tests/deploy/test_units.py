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
from nestcustom.deploy.inventory import load_inventory
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


def test_inventory_own_format(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        "defaults: {user: core, key: ~/.ssh/id_ed25519}\n"
        "hosts:\n  - {name: web1, address: 192.0.2.10}\n  - {name: web2, address: 192.0.2.11, port: 2222, user: root}\n"
        "groups: {canary: [web1], rest: [web2]}\n"
    )
    inventory = load_inventory(path)
    web1, web2 = inventory.hosts
    assert (web1.user, web1.port, web1.needs_sudo, web1.groups) == ("core", 22, True, ("canary",))
    assert (web2.user, web2.port, web2.needs_sudo) == ("root", 2222, False)
    assert web1.key is not None and not web1.key.startswith("~")
    assert [h.name for h in inventory.select(("rest",))] == ["web2"]
    with pytest.raises(BadInputError, match="no host or group named nope"):
        inventory.select(("nope",))


def test_inventory_ansible_subset(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(
        "all:\n  vars: {ansible_user: core}\n  children:\n"
        "    canary:\n      hosts:\n        web1: {ansible_host: 192.0.2.10, ansible_port: 2201}\n"
        "    rest:\n      vars: {ansible_become: true}\n      hosts:\n        web2: {ansible_host: 192.0.2.11}\n"
    )
    web1, web2 = load_inventory(path).hosts
    assert (web1.address, web1.port, web1.user, web1.groups) == (
        "192.0.2.10",
        2201,
        "core",
        ("canary",),
    )
    assert (web2.address, web2.sudo, web2.groups) == ("192.0.2.11", True, ("rest",))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hosts:\n  - {name: a, address: x, password: hunter2}\n", "never handles passwords"),
        ("all:\n  hosts:\n    a: {ansible_ssh_pass: hunter2}\n", "never handles passwords"),
        ("hosts:\n  - {name: a}\n  - {name: a}\n", "hosts listed twice: a"),
        ("hosts:\n  - {name: a, port: 70000}\n", "port 70000 is out of range"),
        ("hosts: []\n", "lists no hosts"),
        ("hosts: [\n", "not valid YAML"),
    ],
)
def test_inventory_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message) as caught:
        load_inventory(path)
    assert "hunter2" not in caught.value.message


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
