"""The promotion journal and its rules, without a registry: what `promote` refuses and
where `--undo` goes back to."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.fleet import promotions
from nestcustom.fleet.promotions import Promotion

IMAGE = "registry.example.com/nestos/agent"
_ROW_KEYS = ("time", "image", "ring", "before", "after", "undo")
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


def refusal(call: object, *args: object) -> tuple[str, str | None]:
    assert callable(call)
    with pytest.raises(BadInputError) as raised:
        call(*args)
    return raised.value.message, raised.value.hint


def test_each_refusal_says_what_to_give_instead() -> None:
    assert refusal(promotions.check_ring, "Stable") == (
        "'Stable' is not a ring name",
        "lower-case letters, digits and '-', starting with a letter or digit "
        "(it becomes the tag ring-NAME), e.g. canary or stable",
    )
    assert refusal(promotions.split_pinned, f"{IMAGE}:v1") == (
        f"'{IMAGE}:v1' is not IMAGE@sha256:DIGEST",
        "promote a digest, never a moving tag: e.g. the digest `nestcustom build --push` "
        "printed (registry.example.com/nestos/agent@sha256:...)",
    )
    # the first '@' splits: an image name never holds one, so a second is refused
    assert refusal(promotions.split_pinned, f"{IMAGE}@{A}@{B}")[0].endswith(
        "is not IMAGE@sha256:DIGEST"
    )
    assert refusal(promotions.check_repository, "agent") == (
        "'agent' is not an image name in a registry",
        "REGISTRY/PATH without a tag, e.g. registry.example.com/nestos/agent",
    )
    history = [move(None, A), move(A, B)]
    assert refusal(promotions.undo_target, history, IMAGE, "beta", B) == (
        f"ring beta of {IMAGE} has no promotion in the journal",
        "check the ring's name and --journal; rings are made by nestcustom promote",
    )
    assert refusal(promotions.undo_target, history, IMAGE, "stable", C)[1] == (
        f"promote the digest you want: nestcustom promote {IMAGE}@DIGEST --ring stable"
    )
    assert refusal(promotions.undo_target, [move(None, A)], IMAGE, "stable", A) == (
        f"ring stable of {IMAGE} had no digest before {A}: nothing to go back to",
        f"promote another digest instead: nestcustom promote {IMAGE}@DIGEST --ring stable",
    )


def test_undo_compares_with_the_last_promotion_not_the_first() -> None:
    history = [move(None, A), move(A, B), move(B, C)]
    message, _ = refusal(promotions.undo_target, history, IMAGE, "stable", B)
    assert f"not {C} as the journal's last promotion says" in message


def test_a_journal_row_is_one_sorted_json_line_readable_by_others(tmp_path: Path) -> None:
    journal = tmp_path / "a" / "b" / "promotions.jsonl"
    promotions.record(journal, Promotion(promotions.now(), IMAGE, "stable", None, A))
    line = journal.read_text(encoding="utf-8")
    assert line.endswith("}\n") and line.count("\n") == 1
    assert list(json.loads(line)) == sorted(_ROW_KEYS)  # keys in a stable order for review
    assert line.index('"after"') < line.index('"before"') < line.index('"undo"')
    umask = os.umask(0)
    os.umask(umask)
    assert journal.stat().st_mode & 0o777 == 0o644 & ~umask  # committed and read by others
    stamp = json.loads(line)["time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert abs(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
               - datetime.now(timezone.utc)).total_seconds() < 120  # fmt: skip


def test_a_journal_that_is_not_text_is_a_located_error(tmp_path: Path) -> None:
    journal = tmp_path / "promotions.jsonl"
    journal.write_bytes(b"\xff\xfe{")
    message, _ = refusal(promotions.load, journal)
    assert message.startswith(f"{journal}: cannot read the promotion journal:")
