"""What `deploy` and `rollback` print for their hosts: text lines, or the run's one JSON
document whose error names the hosts that failed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from nestcustom.cli import output
from nestcustom.cli.hosts import _report
from nestcustom.deploy.report import HostReport

DIGEST = "sha256:" + "ab" * 32
REPORTS = [
    HostReport("h1", "updated", "sha256:" + "11" * 32, DIGEST, seconds=41.0),
    HostReport(
        "h2", "failed", "sha256:" + "11" * 32, None, error="rebase: no space left",
        hint="free /var", failure="rebase",
    ),
]  # fmt: skip


@pytest.fixture
def json_run() -> Iterator[None]:
    output.begin("deploy", True)
    yield
    output.begin("deploy", False)


def test_a_failed_host_makes_the_document_a_failure_naming_it(
    json_run: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _report(REPORTS, True, {"rollout": "r1"}, exit_code=1)
    document = json.loads(capsys.readouterr().out)
    assert document["error"] == {
        "kind": "failure",
        "message": "1 of 2 host(s) failed: h2",
        "hint": None,
    }
    assert (document["ok"], document["exit_code"], document["rollout"]) == (False, 1, "r1")
    assert document["counts"] == {"updated": 1, "failed": 1}
    assert [h["host"] for h in document["hosts"]] == ["h1", "h2"]
    assert document["hosts"][1]["hint"] == "free /var"


def test_a_given_error_is_kept(json_run: None, capsys: pytest.CaptureFixture[str]) -> None:
    stopped = {"kind": "interrupted", "message": "interrupted by SIGTERM", "hint": "resume"}
    _report(REPORTS[:1], True, {}, exit_code=143, error=stopped)
    assert json.loads(capsys.readouterr().out)["error"] == stopped


def test_without_json_each_host_is_text(capsys: pytest.CaptureFixture[str]) -> None:
    output.begin("deploy", False)
    _report(REPORTS, False, {}, exit_code=1)
    out = capsys.readouterr().out
    assert out.startswith("h1") and "h2" in out and "{" not in out
