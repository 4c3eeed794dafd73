"""What the FleetLock server and its etcd client leave and answer, against a real etcd: a key
with an empty value reads back as empty text, a path that only looks like steady-state is
not one, and a halted ring's record names the ring and goes with its lease."""

from __future__ import annotations

import subprocess
import sys

from nestcustom.fleet.etcd import Etcd, Value
from nestcustom.fleet.lockstore import halted_key
from tests.fleet.conftest import EtcdServer, Serve
from tests.fleet.test_etcd_client import b64, gateway
from tests.fleet.test_lockserver import post, release, take


def test_a_key_with_an_empty_value_reads_back_as_empty_text(etcd: EtcdServer) -> None:
    """etcd's gateway leaves an empty value out of its answer altogether."""
    client = Etcd(etcd.url)
    client.put("nestcustom/empty", "")
    client.put("nestcustom/full", "x")
    assert client.keys("nestcustom/") == {"nestcustom/empty": "", "nestcustom/full": "x"}
    assert client.get("nestcustom/empty") == Value("", 1)


def test_only_the_steady_state_path_releases_a_slot(fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 1})
    assert take(base, "h1") == 200
    code, body = post(base, "v1/steady-stateX", {"id": "h1", "group": "default"})
    assert (code, body) == (404, {"kind": "not_found", "value": "/v1/steady-stateX"})
    assert take(base, "h2") == 500  # h1 still holds the one slot
    assert release(base, "h1") == 200
    assert take(base, "h2") == 200


def test_a_halted_rings_record_names_it_and_lasts_the_halt_window(
    etcd: EtcdServer, fleetlock: Serve
) -> None:
    base = fleetlock(slots={"default": 5}, halt_after=1, halt_window=600)
    assert take(base, "r1", ring="canary") == 200
    assert release(base, "r1", ring="canary", health="rolled-back", digest="sha256:bad") == 200
    kvs = gateway(etcd, "kv/range", {"key": b64(halted_key("canary"))})["kvs"]
    lease = int(kvs[0].get("lease", 0))
    assert lease, "the halted record must go when its window ends"
    ttl = int(gateway(etcd, "kv/lease/timetolive", {"ID": str(lease)})["TTL"])
    assert 590 <= ttl <= 600
    command = [sys.executable, "-m", "nestcustom", "fleet", "status", "--etcd", etcd.url, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert '"ring": "canary"' in done.stdout.split('"halted"')[1]
