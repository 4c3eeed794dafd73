"""The journal belongs to one rollout; replay reads exactly what deploy wrote, or says where not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nestcustom.deploy.journal import Journal, read_rows
from nestcustom.deploy.replay import replay
from nestcustom.deploy.report import HostReport, StepRecord
from nestcustom.errors import BadInputError

HEADER = {
    "id": "0" * 32,
    "target": "r/x@sha256:" + "1" * 64,
    "hosts": ["a", "b", "c"],
    "options": {},
}


def journal(path: Path) -> Journal:
    return Journal.create(path, "rollout", HEADER)


def test_a_new_rollout_never_appends_to_an_existing_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal(path).close()
    before = path.read_bytes()
    with pytest.raises(
        BadInputError, match="already exists: a journal belongs to exactly one rollout"
    ) as caught:
        journal(path)
    assert (
        caught.value.hint
        == f"continue that rollout with --resume {path}, or give this one another --journal"
    )
    assert path.read_bytes() == before
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_one_controller_per_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    first = journal(path)
    with pytest.raises(BadInputError, match="in use by another running nestcustom"):
        Journal.reopen(path, "0" * 32)
    first.close()
    Journal.reopen(path, "0" * 32).close()


def test_replay_keeps_full_reports_and_what_each_host_was_doing(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = journal(path)
    failed = HostReport(
        "a",
        "failed",
        "x",
        "x",
        (StepRecord("verify", False, 1.5, "came back on x"),),
        error="came back on x",
        rolled_back=True,
        rollback_verified=True,
    )
    j.record("a", "preflight", "noted", before="x")
    j.record("a", "rebase", "ok")
    j.record("a", "slot", "taken")
    j.record("a", "slot", "released")
    j.record("a", "failed", "ok", report=failed.as_dict())
    j.record("b", "preflight", "noted", before="y")
    j.record("b", "rebase", "ok")
    j.record("b", "slot", "taken")
    j.record("b", "reboot", "ok")
    j.record("b", "interrupted", "ok", error="stopped")
    j.write({"resume": {"controller": "x:1"}})
    j.record("c", "skipped", "ok", reason="not started")
    j.close()
    with path.open("a") as handle:
        handle.write('{"host": "c", "st')  # cut off by the crash itself: no newline
    done = replay(path, read_rows(path))
    assert done.header.id == "0" * 32 and done.header.hosts == ("a", "b", "c")
    a, b, c = done.trail("a"), done.trail("b"), done.trail("c")
    assert a.final == failed  # the whole report, steps and rollback included
    assert (a.rebooting, a.slot_held, a.before) == (False, False, "x")
    assert (b.final, b.rebooting, b.slot_held, b.rebased, b.before) == (None, True, True, True, "y")
    assert (c.final, c.rebooting, c.rebased, c.last) == (None, False, False, ("skipped", "ok"))
    assert done.failures == 1


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ['{"time": "t", "rollout": {"id": 1}}'],
            "j.jsonl:1:1: the rollout header has no id or target",
        ),
        (
            ['{"time": "t", "host": "a"}'],
            "j.jsonl:1:1: not a nestcustom deploy journal (no rollout header)",
        ),
        (
            ["HEADER", '{"time": "t", "rollout": HEAD}'],
            "j.jsonl:2:1: a second rollout header: a journal belongs to exactly one rollout",
        ),
        (
            ["HEADER", '{"time": "t", "host": "a", "step": "done"}'],
            "j.jsonl:2:1: not a journal row: 'state' missing",
        ),
        (
            ["HEADER", '{"time": "t", "host": "a", "step": "x", "state": "ok", "data": []}'],
            "j.jsonl:2:1: not a journal row: 'data' missing",
        ),
        (
            ["HEADER", '{"time": "t", "host": "a", "step": "done" "state"}'],
            "j.jsonl:2:43: not a journal row: Expecting ','",
        ),
        (
            ["HEADER", '{"time": "t", "host": "z", "step": "done", "state": "ok", "data": {}, ID}'],
            "j.jsonl:2:1: host 'z' is not part of this rollout",
        ),
        (
            [
                "HEADER",
                '{"time": "t", "host": "a", "step": "done", "state": "ok", "data": {"report": {"host": "a"}}, ID}',
            ],
            "j.jsonl:2:1: the done row of a holds no report",
        ),
        (["[1, 2]"], "j.jsonl:1:1: not a journal row"),
    ],
)
def test_corrupt_journals_are_located_bad_input(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = tmp_path / "j.jsonl"
    header = json.dumps({"time": "t", "rollout": HEADER})
    text = "\n".join(
        line.replace("HEADER", header)
        .replace("HEAD", json.dumps(HEADER))
        .replace("ID}", f'"rollout_id": "{HEADER["id"]}"}}')
        for line in lines
    )
    path.write_text(text + "\n")
    with pytest.raises(BadInputError) as caught:
        replay(path, read_rows(path))
    assert caught.value.message.replace(str(path), "j.jsonl").startswith(expected)


def test_binary_and_torn_only_files_are_not_journals(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(BadInputError, match=r"j.jsonl:1:1: not a nestcustom journal \(not UTF-8"):
        read_rows(path)
    path.write_text('{"time": "t", "roll')
    with pytest.raises(BadInputError, match=r"j\.jsonl:1:1: not a nestcustom journal"):
        read_rows(path)


def test_replay_keeps_the_header_the_first_before_and_a_blank_trail(tmp_path: Path) -> None:
    from nestcustom.deploy.replay import Header, Trail

    path = tmp_path / "j.jsonl"
    j = Journal.create(path, "rollout", {**HEADER, "options": {"max_failures": 2}})
    j.record("a", "preflight", "noted", before="x")
    j.record("a", "rebase", "ok")
    j.record("a", "preflight", "noted", before="y")  # a resumed preflight: the host moved on
    j.close()
    done = replay(path, read_rows(path))
    target = "r/x@sha256:" + "1" * 64
    assert done.header == Header("0" * 32, target, ("a", "b", "c"), {"max_failures": 2})
    assert done.trail("a").before == "x"  # what it booted when this rollout first saw it
    assert done.trail("b") == Trail()  # no row yet: not started, nothing to resume from


def test_an_empty_journal_is_located_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text("")
    with pytest.raises(BadInputError) as caught:
        replay(path, read_rows(path))
    assert caught.value.message == f"{path}:1:1: the journal is empty"
    assert caught.value.hint and "header" in caught.value.hint


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        ("f" * 32, f"this row belongs to rollout {'f' * 32!r}, not to {'0' * 32!r} (the header's)"),
        (None, f"this row names no rollout (the header's is {'0' * 32!r})"),
    ],
)
def test_every_row_must_carry_the_headers_rollout_id(
    tmp_path: Path, rollout: str | None, expected: str
) -> None:
    """A row spliced in from another rollout's journal (or an edited one) is refused, located."""
    path = tmp_path / "j.jsonl"
    j = journal(path)
    j.record("a", "preflight", "noted", before="x")
    j.close()
    row = {"time": "t", "host": "b", "step": "preflight", "state": "start", "data": {}}
    if rollout is not None:
        row["rollout_id"] = rollout
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    with pytest.raises(BadInputError) as caught:
        read_rows(path)
    assert caught.value.message == f"{path}:3:1: {expected}"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[1]["rollout_id"] == HEADER["id"]  # what deploy writes in every row


def test_replay_keeps_the_kernel_arguments_a_host_was_given(tmp_path: Path) -> None:
    """A resumed rollout checks /proc/cmdline of a host that was rebooting against what
    the earlier run applied, and a rollback against the command line before it."""
    path = tmp_path / "j.jsonl"
    j = journal(path)
    j.record("a", "rebase", "ok")
    j.record("a", "kargs", "ok", present=["nosmt"], absent=["quiet"], cmdline="rw quiet")
    j.record("a", "reboot", "start")
    j.close()
    trail = replay(path, read_rows(path)).trail("a")
    assert trail.kargs == {"present": ["nosmt"], "absent": ["quiet"], "cmdline": "rw quiet"}
    assert trail.rebooting and trail.rebased
