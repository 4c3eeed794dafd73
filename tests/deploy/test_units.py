"""Deploy pieces that need no host: inventory, status model, journal, ssh errors, FleetLock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nestcustom.deploy.hoststatus import parse_status
from nestcustom.deploy.ssh import Failure, classify

STATUS = {
    "deployments": [
        {
            "id": "nestos-bbb.0",
            "osname": "nestos",
            "checksum": "bbb",
            "serial": 0,
            "booted": False,
            "staged": True,
            "pinned": False,
            "unlocked": "none",
            "timestamp": 2,
            "version": "22.03-LTS-SP2.20230922.0",
            "container-image-reference": "ostree-unverified-registry:r/x@sha256:" + "1" * 64,
            "container-image-reference-digest": "sha256:" + "1" * 64,
        },
        {
            "id": "nestos-aaa.0",
            "osname": "nestos",
            "checksum": "aaa",
            "serial": 0,
            "booted": True,
            "staged": False,
            "pinned": False,
            "unlocked": "none",
            "timestamp": 1,
            "version": "22.03-LTS-SP2.20230922.0",
            "origin": "openEuler:openEuler/x86_64/nestos/stable",
        },
    ],
    "transaction": None,
    "cached-update": None,
    "update-driver": {"driver-name": "Zincati", "driver-sd-unit": "zincati.service"},
}


def test_status_model() -> None:
    status = parse_status(json.dumps(STATUS))
    assert (
        status.booted is not None
        and status.booted.origin == "openEuler:openEuler/x86_64/nestos/stable"
    )
    assert status.staged is not None and status.staged.image_digest == "sha256:" + "1" * 64
    assert status.rollback is None
    assert status.update_driver == "Zincati (zincati.service)"
    assert not status.transaction


@pytest.mark.parametrize(
    ("stderr", "failure"),
    [
        (
            "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n",
            Failure.HOST_KEY_CHANGED,
        ),
        (
            "No ED25519 host key is known for [127.0.0.1]:2201 and you have requested strict checking.\n"
            "Host key verification failed.\n",
            Failure.HOST_KEY_UNKNOWN,
        ),
        ("root@127.0.0.1: Permission denied (publickey).\n", Failure.AUTH),
        ("ssh: connect to host 127.0.0.1 port 9: Connection refused\n", Failure.UNREACHABLE),
    ],
)
def test_ssh_failures_are_classified(stderr: str, failure: Failure) -> None:
    assert classify(stderr) is failure


def test_deploy_refuses_a_malformed_reference_before_any_network(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  - {name: a, address: 127.0.0.1, port: 9}\n")
    result = subprocess.run(
        [sys.executable, "-m", "nestcustom", "deploy", "-i", str(inventory), "bad ref!"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "error: 'bad ref!' is not a valid image reference" in result.stderr
    assert "hint: write REGISTRY/NAME:TAG" in result.stderr


def test_ssh_destination_follows_double_dash(tmp_path: Path) -> None:
    from nestcustom.deploy.inventory import Host
    from nestcustom.deploy.ssh import Connection, SshOptions

    argv = Connection(Host("a", "a.example", user="core"), SshOptions(tmp_path)).ssh_argv()
    assert argv[-2:] == ["--", "a.example"]
    assert argv.count("--") == 1


def test_report_lines_say_what_happened(capsys: pytest.CaptureFixture[str]) -> None:
    from nestcustom.cli.hosts import _report
    from nestcustom.deploy.report import NOT_BACK, HostReport

    _report(
        [
            HostReport("a", "failed", "x", None, error="did not come back", rollback_note=NOT_BACK),
            HostReport(
                "b",
                "failed",
                "x",
                "x",
                error="came back on x",
                rolled_back=True,
                rollback_verified=True,
            ),
            HostReport(
                "c",
                "failed",
                "x",
                "y",
                error="came back on y",
                rolled_back=True,
                rollback_verified=False,
            ),
            HostReport("d", "rolled back", "y", "x"),
        ],
        False,
        {},
    )
    out = capsys.readouterr().out
    assert (
        "a  failed      x -> -\n   error: did not come back\n   rollback: not back; no rollback sent\n"
        in out
    )
    assert "   rollback: verified\n" in out and "   rollback: NOT verified\n" in out
    assert "d  rolled back y -> x\n" in out
    assert out.endswith("3 failed, 1 rolled back\n")  # a rollback is not counted as "updated"


def test_resume_of_a_corrupt_journal_is_located_bad_input(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  - {name: a, address: 127.0.0.1, port: 9}\n")
    journal = tmp_path / "j.jsonl"
    journal.write_text(
        '{"time": "t", "rollout": {"id": "x", "target": "r", "hosts": [], "options": {}}}\n{oops\n'
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "deploy",
            "-i",
            str(inventory),
            "127.0.0.1:9/x/y:1",
            "--resume",
            str(journal),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert f"error: {journal}:2:2: not a journal row: Expecting property name" in result.stderr
    assert "internal error" not in result.stderr
