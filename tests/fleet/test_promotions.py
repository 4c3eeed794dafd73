"""The promotion journal and its rules, without a registry: what `promote` refuses and
where `--undo` goes back to."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.fleet import promotions
from nestcustom.fleet.promotions import Promotion

IMAGE = "registry.example.com/nestos/agent"
A, B, C = ("sha256:" + c * 64 for c in "abc")


def move(before: str | None, after: str, undo: bool = False, ring: str = "stable") -> Promotion:
    return Promotion("2026-12-06T00:00:00Z", IMAGE, ring, before, after, undo)


def test_a_journal_round_trips_in_order(tmp_path: Path) -> None:
    journal = tmp_path / "deep" / "promotions.jsonl"
    assert promotions.load(journal) == []  # no file yet: no promotion
    rows = [move(None, A), move(A, B), move(B, A, undo=True)]
    for row in rows:
        promotions.record(journal, row)
    assert promotions.load(journal) == rows
    assert len(journal.read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("{not json", ":2:2: not JSON"),
        ('{"time": "t"}', ":2: not a promotion"),
        (
            '{"time": "t", "image": "i", "ring": "Bad Ring", "before": null, '
            f'"after": "{A}", "undo": false}}',
            ":2: a promotion with a value of the wrong kind",
        ),
        (
            '{"time": "t", "image": "i", "ring": "r", "before": "sha256:short", '
            f'"after": "{A}", "undo": false}}',
            ":2: a promotion with a value of the wrong kind",
        ),
    ],
)
def test_a_damaged_journal_is_a_located_error(tmp_path: Path, line: str, said: str) -> None:
    journal = tmp_path / "promotions.jsonl"
    promotions.record(journal, move(None, A))
    with journal.open("a") as f:
        f.write(line + "\n")
    with pytest.raises(BadInputError) as raised:
        promotions.load(journal)
    assert raised.value.message.startswith(f"{journal}{said}")
    assert "restore the line from git" in str(raised.value.hint)


def test_undo_goes_back_one_promotion_at_a_time() -> None:
    history = [move(None, A), move(A, B), move(B, C)]
    assert promotions.undo_target(history, IMAGE, "stable", C) == B
    history.append(move(C, B, undo=True))
    assert promotions.undo_target(history, IMAGE, "stable", B) == A
    history.append(move(B, A, undo=True))
    with pytest.raises(BadInputError, match=r"had no digest before .*: nothing to go back to"):
        promotions.undo_target(history, IMAGE, "stable", A)


def test_undo_after_a_new_promotion_goes_back_to_the_digest_before_it() -> None:
    history = [move(None, A), move(A, B), move(B, A, undo=True), move(A, C)]
    assert promotions.undo_target(history, IMAGE, "stable", C) == A


def test_undo_reads_only_its_own_ring_and_image() -> None:
    history = [move(None, A), move(A, B), move(None, C, ring="canary")]
    assert promotions.undo_target(history, IMAGE, "stable", B) == A
    with pytest.raises(BadInputError, match=r"ring beta of .* has no promotion"):
        promotions.undo_target(history, IMAGE, "beta", B)
    with pytest.raises(BadInputError, match="has no promotion"):
        promotions.undo_target(history, "other.example.com/x", "stable", B)


def test_undo_refuses_a_ring_moved_by_something_else() -> None:
    history = [move(None, A), move(A, B)]
    with pytest.raises(BadInputError) as raised:
        promotions.undo_target(history, IMAGE, "stable", C)
    assert raised.value.message == (
        f"ring stable of {IMAGE} serves {C}, not {B} as the journal's last promotion says: "
        "it was moved by something else"
    )
    with pytest.raises(BadInputError, match="serves nothing"):
        promotions.undo_target(history, IMAGE, "stable", None)


@pytest.mark.parametrize(
    "reference",
    [IMAGE, f"{IMAGE}:v1", f"{IMAGE}@sha256:abc", f"{IMAGE}@{A[:-1]}X", f"Registry/X@{A}", f"@{A}"],
)
def test_only_a_pinned_image_in_a_registry_is_promoted(reference: str) -> None:
    with pytest.raises(BadInputError):
        promotions.split_pinned(reference)


def test_a_pinned_image_splits_into_repository_and_digest() -> None:
    assert promotions.split_pinned(f"127.0.0.1:5000/custom/agent@{A}") == (
        "127.0.0.1:5000/custom/agent",
        A,
    )


@pytest.mark.parametrize("ring", ["", "Stable", "-x", "a b", "x" * 64, "ring/x"])
def test_ring_names_become_tags(ring: str) -> None:
    with pytest.raises(BadInputError, match="is not a ring name"):
        promotions.check_ring(ring)


def test_a_ring_tag() -> None:
    assert promotions.ring_tag(promotions.check_ring("canary-2")) == "ring-canary-2"
    assert promotions.check_ring("x" * 63) == "x" * 63
