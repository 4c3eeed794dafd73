"""The reboot semaphore as airlock keeps it: the same JSON, re-entrant, sorted holders."""

from __future__ import annotations

import json

import pytest

from nestcustom.fleet.semaphore import AllHeld, Semaphore


def test_airlocks_json_both_ways() -> None:
    text = '{"total_slots": 2, "holders": ["b", "a"]}'
    semaphore = Semaphore.parse(text)
    assert semaphore == Semaphore(2, ("a", "b"))
    assert json.loads(semaphore.text()) == {"total_slots": 2, "holders": ["a", "b"]}


def test_taking_is_re_entrant_and_bounded() -> None:
    empty = Semaphore(2)
    one = empty.lock("m2")
    two = one.lock("m1")
    assert two.holders == ("m1", "m2")
    assert two.lock("m2") == two  # a holder asking again keeps its slot, takes no other
    with pytest.raises(AllHeld, match=r"^all 2 semaphore slots currently locked$"):
        two.lock("m3")
    with pytest.raises(AllHeld):
        Semaphore(0).lock("m1")


def test_releasing_is_idempotent() -> None:
    two = Semaphore(2, ("m1", "m2"))
    assert two.unlock("m1") == Semaphore(2, ("m2",))
    assert two.unlock("nobody") == two
    assert two.unlock("m1").lock("m3").holders == ("m2", "m3")
