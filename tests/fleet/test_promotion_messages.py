"""What a user reads when the promotion journal cannot be used: each damaged row's
located message and hint, word for word, and a journal read as UTF-8 whatever the locale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.fleet import promotions
from nestcustom.fleet.promotions import Promotion

A = "sha256:" + "a" * 64
HINT = "a promotion journal is written by nestcustom promote; restore the line from git"
GOOD = {"time": "t", "image": "i", "ring": "r", "before": None, "after": A, "undo": False}


def refused(journal: Path, line: str) -> tuple[str, str | None]:
    journal.write_text(json.dumps(GOOD) + "\n\n" + line + "\n")
    with pytest.raises(BadInputError) as raised:
        promotions.load(journal)
    return raised.value.message, raised.value.hint


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("{not json", ":3:2: not JSON: Expecting property name enclosed in double quotes"),
        ("[]", ":3: not a promotion (keys ['after', 'before', 'image', 'ring', 'time', 'undo'])"),
        (
            json.dumps({**GOOD, "extra": 1}),
            ":3: not a promotion (keys ['after', 'before', 'image', 'ring', 'time', 'undo'])",
        ),
        (json.dumps({**GOOD, "undo": "no"}), ":3: a promotion with a value of the wrong kind"),
        (json.dumps({**GOOD, "time": 1}), ":3: a promotion with a value of the wrong kind"),
        (json.dumps({**GOOD, "after": "latest"}), ":3: a promotion with a value of the wrong kind"),
    ],
)
def test_a_damaged_row_is_said_with_its_line_and_how_to_repair_it(
    tmp_path: Path, line: str, said: str
) -> None:
    journal = tmp_path / "promotions.jsonl"
    assert refused(journal, line) == (f"{journal}{said}", HINT)


def test_a_journal_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    journal = tmp_path / "promotions.jsonl"
    journal.mkdir()
    with pytest.raises(BadInputError) as raised:
        promotions.load(journal)
    assert (raised.value.message, raised.value.hint) == (
        f"{journal}: cannot read the promotion journal: [Errno 21] Is a directory: '{journal}'",
        None,
    )


def test_the_journal_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    journal = tmp_path / "promotions.jsonl"
    row = Promotion("2026-12-06T00:00:00Z (révisé)", "i", "r", None, A)
    journal.write_bytes((json.dumps(asdict(row), ensure_ascii=False) + "\n").encode())
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from nestcustom.fleet import promotions; "
         "print(ascii(promotions.load(__import__('pathlib').Path(sys.argv[1]))))", str(journal)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ascii([row]) + "\n"
