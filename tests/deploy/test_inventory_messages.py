"""What a user reads when an inventory or a journal is refused: the location (line and column
of the host as written), no stray key path before a whole-file problem, the keys allowed
where an unknown one has no near match, and the hint of a journal joined from two rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nestcustom.deploy.inventory import load_inventory
from nestcustom.deploy.journal import Journal, read_rows
from nestcustom.errors import BadInputError
from tests.deploy.test_journal import HEADER


def refusal(path: Path) -> BadInputError:
    with pytest.raises(BadInputError) as caught:
        load_inventory(path)
    return caught.value


def test_an_ini_inventory_that_is_not_utf8_is_said_at_its_start(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_bytes(b"web1\n\xff\n")
    assert refusal(path).message == (
        f"{path}:1:1: the inventory is not UTF-8 text\n1 problem in the inventory"
    )


def test_an_indented_hosts_bad_address_is_located_at_the_host(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[g]\n  web1 ansible_host=a:b\n")
    assert refusal(path).message.splitlines()[0] == (
        f"{path}:2:3: host 'web1': 'a:b' is not a host name or an IP address"
    )


def test_an_unknown_key_with_no_near_match_lists_the_allowed_keys(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("hosts:\n  - name: web1\n    qqqqqq: 1\n")
    error = refusal(path)
    assert error.message.splitlines()[:2] == [
        f"{path}:3:5: hosts[0].qqqqqq: unknown key 'qqqqqq'",
        "  hint: allowed keys: address, key, known_hosts, name, port, ssh_config, sudo, user",
    ]


def test_a_row_of_another_rollout_says_a_journal_holds_one(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal.create(path, "rollout", HEADER).close()
    row = {"time": "t", "host": "b", "step": "preflight", "state": "start", "data": {},
           "rollout_id": "f" * 32}  # fmt: skip
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    with pytest.raises(BadInputError) as caught:
        read_rows(path)
    assert caught.value.hint == (
        "a journal holds the rows of one rollout only; it was edited or joined from "
        "several files: resume with the journal the rollout wrote"
    )
