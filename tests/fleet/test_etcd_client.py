"""The etcd client against a real etcd: what it writes is what etcd holds, read back
through etcd's own gateway (not through the client under test)."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

import pytest

from nestcustom.errors import BadInputError
from nestcustom.fleet.etcd import Etcd, EtcdUnavailable, Value
from tests.fleet.conftest import EtcdServer


def gateway(etcd: EtcdServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{etcd.url}/v3/{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        document: dict[str, Any] = json.loads(answer.read())
        return document


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def stored(etcd: EtcdServer, key: str) -> tuple[str, int] | None:
    """(value, lease id) of `key` as etcd holds it; None when there is no such key."""
    kvs = gateway(etcd, "kv/range", {"key": b64(key)}).get("kvs") or []
    if not kvs:
        return None
    return base64.b64decode(kvs[0]["value"]).decode(), int(kvs[0].get("lease", 0))


def test_put_writes_the_key_and_value_with_no_lease(etcd: EtcdServer) -> None:
    client = Etcd(etcd.url)
    client.put("nestcustom/a", "one")
    assert stored(etcd, "nestcustom/a") == ("one", 0)
    client.put("nestcustom/a", "two")
    assert client.get("nestcustom/a") == Value("two", 2)


def test_put_with_a_lease_ties_the_key_to_it(etcd: EtcdServer) -> None:
    client = Etcd(etcd.url)
    lease = client.grant(600)
    client.put("nestcustom/leased", "x", lease)
    assert stored(etcd, "nestcustom/leased") == ("x", lease)
    gateway(etcd, "kv/lease/revoke", {"ID": str(lease)})
    assert stored(etcd, "nestcustom/leased") is None  # the key went with its lease


def test_delete_removes_exactly_the_key(etcd: EtcdServer) -> None:
    client = Etcd(etcd.url)
    client.put("nestcustom/k", "1")
    client.put("nestcustom/k2", "2")
    client.delete("nestcustom/k")
    assert client.get("nestcustom/k") == Value("", 0)
    assert stored(etcd, "nestcustom/k2") == ("2", 0)
    client.delete("nestcustom/never-there")  # deleting nothing is no error


def test_a_grant_lasts_the_seconds_asked(etcd: EtcdServer) -> None:
    lease = Etcd(etcd.url).grant(600)
    ttl = int(gateway(etcd, "kv/lease/timetolive", {"ID": str(lease)})["TTL"])
    assert 590 <= ttl <= 600  # not etcd's minimum, which a TTL it did not read would get


def test_a_transaction_writes_and_deletes_only_while_the_version_holds(etcd: EtcdServer) -> None:
    client = Etcd(etcd.url)
    assert client.commit_if_version("s", 0, {"s": ("v1", 0), "t": ("x", 0)})
    assert not client.commit_if_version("s", 0, {"s": ("lost", 0)})  # no longer absent
    assert client.get("s") == Value("v1", 1)
    assert client.commit_if_version("s", 1, {"s": ("v2", 0)}, ("t",))
    assert (client.get("s"), client.get("t")) == (Value("v2", 2), Value("", 0))
    assert client.keys("s") == {"s": "v2"}


def test_an_etcd_that_is_away_or_refuses_is_said_with_its_url(etcd: EtcdServer) -> None:
    client = Etcd(etcd.url + "/")
    with pytest.raises(EtcdUnavailable) as refused:
        client.put("k", "v", lease=424242)  # no such lease: etcd answers an error
    assert refused.value.message.startswith(f"etcd at {etcd.url} answered 404: ")
    assert "requested lease not found" in refused.value.message
    etcd.stop()
    with pytest.raises(EtcdUnavailable) as away:
        client.delete("k")
    assert away.value.message.startswith(f"etcd at {etcd.url} cannot be reached: ")


def test_an_etcd_url_must_be_http() -> None:
    with pytest.raises(BadInputError) as raised:
        Etcd("127.0.0.1:2379")
    assert (raised.value.message, raised.value.hint) == (
        "--etcd '127.0.0.1:2379' is not an http(s) URL",
        "for example http://127.0.0.1:2379",
    )
