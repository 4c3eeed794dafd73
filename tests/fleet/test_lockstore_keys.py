"""The reboot budget's state in a real etcd: one key per name (escaped, so no id reaches
into another's keys), nothing left of a released slot, what `fleet status` reads back
word for word, and the names the server's refusals carry."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from nestcustom.fleet.etcd import Etcd
from nestcustom.fleet.lockstore import Budget, Contended, LockStore
from nestcustom.fleet.semaphore import Semaphore
from tests.fleet.conftest import EtcdServer, Serve
from tests.fleet.test_lockserver import post, release, take


def all_keys(client: Etcd) -> set[str]:
    return set(client.keys("com.coreos.airlock/")) | set(client.keys("nestcustom/"))


def test_each_name_is_one_escaped_key_segment(etcd: EtcdServer) -> None:
    client = Etcd(etcd.url)
    store = LockStore(client, Budget({"rack/1": 2}))
    store.pre_reboot("rack/1", "node/a")
    assert all_keys(client) == {
        "com.coreos.airlock/groups/rack%2F1/v1/semaphore",
        "nestcustom/groups/rack%2F1/v1/held/node%2Fa",
        "nestcustom/hosts/node%2Fa",
    }
    assert Semaphore.parse(client.get("com.coreos.airlock/groups/rack%2F1/v1/semaphore").text) == (
        Semaphore(2, ("node/a",))
    )


def test_hosts_whose_ids_share_a_tail_are_two_hosts(etcd: EtcdServer) -> None:
    store = LockStore(Etcd(etcd.url), Budget({"default": 2}))
    store.pre_reboot("default", "rack/1", "stable")
    store.pre_reboot("default", "1", "canary")
    hosts = store.hosts()
    assert {h: r["ring"] for h, r in hosts.items()} == {"rack/1": "stable", "1": "canary"}


def test_fleet_status_names_a_host_by_the_id_it_gave(etcd: EtcdServer, fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 1})
    assert take(base, "node:1.example") == 200  # ':' is allowed in a Zincati id
    command = [sys.executable, "-m", "nestcustom", "fleet", "status", "--etcd", etcd.url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "  node:1.example: rebooting (group default)"


def test_a_released_slot_leaves_nothing_of_its_holder_under_held(etcd: EtcdServer) -> None:
    client = Etcd(etcd.url)
    store = LockStore(client, Budget({"default": 1}))
    store.pre_reboot("default", "h1")
    assert set(client.keys("nestcustom/groups/")) == {"nestcustom/groups/default/v1/held/h1"}
    assert store.steady_state("default", "h1", {}) == Semaphore(1)
    assert client.keys("nestcustom/groups/") == {}


def test_fleet_status_shows_every_report_as_the_hosts_gave_it(
    etcd: EtcdServer, fleetlock: Serve
) -> None:
    base = fleetlock(slots={"default": 3})
    started = time.time()
    assert take(base, "h1", ring="stable") == 200
    assert release(base, "h1", ring="stable", digest="sha256:aaa", health="ok") == 200
    assert take(base, "h2", ring="stable") == 200
    assert take(base, "h3", ring="canary") == 200
    assert release(base, "h3", ring="canary", digest="sha256:bad", health="rolled-back") == 200
    command = [sys.executable, "-m", "nestcustom", "fleet", "status", "--etcd", etcd.url]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert text == (
        "ring canary  sha256:bad  1 host(s) rolled back from it\n"
        "ring stable  -  1 host(s)\n"
        "ring stable  sha256:aaa  1 host(s)\n"
        "  h2: rebooting (group default)\n"
        "  h3: rolled back (group default)\n"
    )
    hosts = json.loads(
        subprocess.run([*command, "--json"], capture_output=True, text=True, check=True).stdout
    )["hosts"]
    times = {h: r.pop("time") for h, r in hosts.items()}
    assert all(started - 1 <= t <= time.time() + 1 for t in times.values()), times
    assert hosts == {
        "h1": {
            "event": "steady", "group": "default", "ring": "stable",
            "digest": "sha256:aaa", "health": "ok",
        },
        "h2": {"event": "rebooting", "group": "default", "ring": "stable"},
        "h3": {
            "event": "steady", "group": "default", "ring": "canary",
            "digest": "sha256:bad", "health": "rolled-back",
        },
    }  # fmt: skip


def test_only_a_rollback_counts_against_a_ring(fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 5}, halt_after=1, halt_window=60)
    assert take(base, "h1", ring="canary") == 200
    assert release(base, "h1", ring="canary", health="ok", digest="sha256:good") == 200
    assert take(base, "h2", ring="canary") == 200  # a healthy report halts nothing
    assert release(base, "h2", health="rolled-back") == 200  # no ring: nothing to halt
    assert take(base, "h3", ring="canary") == 200


def test_a_ring_named_into_another_rings_keys_halts_only_itself(fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 5}, halt_after=1, halt_window=60)
    odd = "canary/rollbacks/x"
    assert take(base, "h1", ring=odd) == 200
    assert release(base, "h1", ring=odd, health="rolled-back") == 200
    assert post(base, "v1/pre-reboot", {"id": "h2", "group": "default", "ring": odd}) == (
        403,
        {"kind": "ring_halted", "value": f"ring {odd}: too many hosts rolled back lately"},
    )
    assert take(base, "h3", ring="canary") == 200


def test_refusals_name_the_ring_and_the_group(fleetlock: Serve) -> None:
    base = fleetlock(slots={"default": 5}, halt_after=1, halt_window=60)
    assert take(base, "h1", ring="canary") == 200
    assert release(base, "h1", ring="canary", health="rolled-back") == 200
    assert post(base, "v1/pre-reboot", {"id": "h2", "group": "default", "ring": "canary"}) == (
        403,
        {"kind": "ring_halted", "value": "ring canary: too many hosts rolled back lately"},
    )
    assert post(base, "v1/steady-state", {"id": "h2", "group": "workers"}) == (
        400,
        {"kind": "unknown_group", "value": "group workers is not served here"},
    )


class AlwaysOutraced(Etcd):
    """A real etcd on which another writer changes the semaphore before each commit."""

    def commit_if_version(
        self,
        key: str,
        version: int,
        puts: dict[str, tuple[str, int]],
        deletes: tuple[str, ...] = (),
    ) -> bool:
        self.put(key, self.get(key).text or Semaphore(1).text())
        return super().commit_if_version(key, version, puts, deletes)


def test_a_server_that_keeps_losing_the_race_gives_up_naming_the_group(
    etcd: EtcdServer,
) -> None:
    store = LockStore(AlwaysOutraced(etcd.url), Budget({"default": 1}))
    with pytest.raises(Contended) as taking:
        store.pre_reboot("default", "h1")
    with pytest.raises(Contended) as releasing:
        store.steady_state("default", "h1", {})
    assert (str(taking.value), str(releasing.value)) == ("default", "default")
    assert Etcd(etcd.url).keys("nestcustom/") == {}  # no lost transaction wrote anything
