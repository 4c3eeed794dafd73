"""nestcustom deploy / status / rollback against hosts running the real sshd and the
host-mode rpm-ostree emulator, with images in the real registry."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import FleetFactory, digest_of, nestcustom, report
from tests.deploy.fleetlock_server import Semaphore, serve_fleetlock
from tests.universe.registry import Registry

pytestmark = [pytest.mark.universe, pytest.mark.hosts]


def test_deploy_pins_the_digest_updates_hosts_and_reruns_idempotently(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    inventory = hosts.inventory(tmp_path / "hosts.yaml", users={"host2": "core"})
    result = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--batch",
        "2",
        "--no-tls-verify",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    digest = digest_of(images["v1"])
    hosts_report = report(result)
    assert {h: r["outcome"] for h, r in hosts_report.items()} == {
        "host1": "updated",
        "host2": "updated",
    }
    for host in hosts.hosts:
        status = host.status()
        assert host.booted_digest() == digest
        assert len(status["deployments"]) == 2  # after the reboot: the new one and the rollback
        booted = status["deployments"][0]
        assert (
            booted["container-image-reference"]
            == f"ostree-unverified-registry:{images['v1'].rsplit(':', 1)[0]}@{digest}"
        )
    assert [s["step"] for s in hosts_report["host1"]["steps"]] == [
        "preflight",
        "rebase",
        "reboot",
        "wait",
        "verify",
    ]
    again = nestcustom(
        tmp_path, "deploy", "-i", str(inventory), images["v1"], "--no-tls-verify", "--json"
    )
    assert again.returncode == 0, again.stderr
    assert {r["outcome"] for r in report(again).values()} == {"unchanged"}
    listed = nestcustom(tmp_path, "status", "-i", str(inventory), "--json")
    rows = json.loads(listed.stdout)["hosts"]
    assert [row["digest"] for row in rows] == [digest, digest]
    assert all(row["rollback"] == "openEuler:openEuler/x86_64/nestos/stable" for row in rows)


def test_mixed_faults_each_reported_and_rolled_back(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(6)
    h = {host.name: host for host in hosts.hosts}
    h["host2"].inject("rebase-fails", "Importing: layer fetch failed: unexpected EOF")
    h["host3"].inject("boots-old")
    h["host4"].stop()
    h["host5"].refuse_auth()
    h["host6"].change_host_key()
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    result = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--batch",
        "3",
        "--max-failures",
        "10",
        "--no-tls-verify",
        "--reboot-timeout",
        "30",
        "--json",
    )
    assert result.returncode == 1
    by_host = report(result)
    assert by_host["host1"]["outcome"] == "updated"
    assert "layer fetch failed: unexpected EOF" in str(by_host["host2"]["error"])
    assert by_host["host2"]["rolled_back"] is False  # nothing was staged
    assert str(by_host["host3"]["error"]).startswith("came back on ")
    assert (by_host["host3"]["rolled_back"], by_host["host3"]["rollback_verified"]) == (True, True)
    assert by_host["host3"]["after"] == by_host["host3"]["before"]
    assert str(by_host["host4"]["error"]).startswith("unreachable")
    assert str(by_host["host5"]["error"]).startswith("authentication refused")
    assert str(by_host["host6"]["error"]).startswith("host key changed")
    assert h["host3"].booted_digest() is None  # still on its ostree origin
    assert h["host6"].booted_digest() is None  # never touched


def test_max_failures_stops_starting_new_hosts(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(4)
    hosts.hosts[0].inject("rebase-fails", "injected failure")
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    result = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--max-failures",
        "1",
        "--no-tls-verify",
        "--json",
    )
    assert result.returncode == 1
    outcomes = {h: r["outcome"] for h, r in report(result).items()}
    assert outcomes == {
        "host1": "failed",
        "host2": "skipped",
        "host3": "skipped",
        "host4": "skipped",
    }
    assert all(host.booted_digest() is None for host in hosts.hosts)


def test_registry_and_image_errors_surface_as_rpm_ostree_says(
    fleet: FleetFactory, images: dict[str, str], registry: Registry, tmp_path: Path
) -> None:
    hosts = fleet(1)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    plain = nestcustom(
        tmp_path, "deploy", "-i", str(inventory), images["plain"], "--no-tls-verify", "--json"
    )
    # Checked once, before any host is touched, rather than found out on every host.
    assert plain.returncode == 2
    assert (
        f"error: {images['plain']} is not a bootable image: it has no ostree.bootable label"
        in plain.stderr
    )
    assert "host1" not in plain.stderr
    missing = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        f"{registry.host}/fleet/nestos:nope",
        "--no-tls-verify",
    )
    assert missing.returncode == 1
    assert (
        "manifest unknown" in missing.stderr
    )  # resolving the tag fails before any host is touched
    assert hosts.hosts[0].booted_digest() is None


def test_zincati_needs_a_decision(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    for host in hosts.hosts:
        host.inject("zincati")
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    refused = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--batch",
        "2",
        "--max-failures",
        "2",
        "--no-tls-verify",
        "--json",
    )
    by_host = report(refused)
    assert (
        by_host["host1"]["error"] == "updates on this host are driven by Zincati (zincati.service)"
    )
    assert "--disable-zincati" in str(by_host["host1"]["hint"])
    done = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--batch",
        "2",
        "--disable-zincati",
        "--no-tls-verify",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    config = hosts.hosts[0].exec("cat", "/etc/zincati/config.d/90-disable-auto-updates.toml")
    assert config == "[updates]\nenabled = false\n"


def test_host_that_never_comes_back_is_reported(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    hosts.hosts[0].inject("never-back")
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    result = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--reboot-timeout",
        "10",
        "--no-tls-verify",
        "--json",
    )
    assert result.returncode == 1
    host = report(result)["host1"]
    assert host["error"] == "did not come back within 10 s of the reboot"
    # Nothing can be sent to a host that does not answer: never "rolled back: NOT verified".
    assert (host["rolled_back"], host["rollback_verified"]) == (False, None)
    assert host["rollback_note"] == "not back; no rollback sent"


def test_resume_after_sigint_finishes_without_redoing_hosts(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(3)
    hosts.hosts[0].inject("slow", "3")  # host1's reboot takes a while: time to interrupt
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    journal = tmp_path / "rollout.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "deploy",
            "-i",
            str(inventory),
            images["v1"],
            "--no-tls-verify",
            "--journal",
            str(journal),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "host1 | reboot start" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"finish with --resume {journal}" in err
    assert "host2  skipped" in out and "host3  skipped" in out
    first_boot = hosts.hosts[0].boot_id()
    resumed = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--no-tls-verify",
        "--resume",
        str(journal),
        "--json",
    )
    assert resumed.returncode == 0, resumed.stderr
    outcomes = {h: r["outcome"] for h, r in report(resumed).items()}
    assert outcomes == {"host1": "updated", "host2": "updated", "host3": "updated"}
    assert report(resumed)["host1"]["before"] == "openEuler:openEuler/x86_64/nestos/stable"
    assert hosts.hosts[0].boot_id() == first_boot  # finished before the resume: not rebooted again
    digest = digest_of(images["v1"])
    assert all(host.booted_digest() == digest for host in hosts.hosts)


def test_rollback_command(fleet: FleetFactory, images: dict[str, str], tmp_path: Path) -> None:
    hosts = fleet(1)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    assert (
        nestcustom(
            tmp_path, "deploy", "-i", str(inventory), images["v1"], "--no-tls-verify"
        ).returncode
        == 0
    )
    result = nestcustom(tmp_path, "rollback", "-i", str(inventory), "--json")
    assert result.returncode == 0, result.stderr
    assert hosts.hosts[0].booted_digest() is None  # back on the ostree origin
    again = nestcustom(tmp_path, "rollback", "-i", str(inventory), "--json")
    assert again.returncode == 0  # the image deployment is now the rollback one
    assert hosts.hosts[0].booted_digest() == digest_of(images["v1"])


def test_dry_run_changes_nothing(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    result = nestcustom(
        tmp_path, "deploy", "-i", str(inventory), images["v2"], "--dry-run", "--no-tls-verify"
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"target   ostree-unverified-registry:{images['v2'].rsplit(':', 1)[0]}@{digest_of(images['v2'])}"
        in result.stdout
    )
    assert hosts.hosts[0].booted_digest() is None
    assert not list(tmp_path.glob("nestcustom-deploy-*.jsonl"))


def test_fleetlock_slot_taken_per_reboot_and_released(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    semaphore = Semaphore(slots=1, groups=("default", "workers"))
    with serve_fleetlock(semaphore=semaphore) as url:
        result = nestcustom(
            tmp_path,
            "deploy",
            "-i",
            str(inventory),
            images["v1"],
            "--batch",
            "2",
            "--fleetlock",
            url,
            "--group",
            "workers",
            "--reboot-timeout",
            "60",  # a regression fails in a minute, not after the default 600 s
            "--no-tls-verify",
            "--json",
        )
        assert result.returncode == 0, result.stderr
        assert (
            len(semaphore.taken) == 2 and len(set(semaphore.taken)) == 2
        )  # one slot each, in turn
        assert semaphore.holders == set()  # released after verification
        semaphore.holders.add("someone-else")  # e.g. Zincati rebooting another machine
        blocked = nestcustom(
            tmp_path,
            "deploy",
            "-i",
            str(inventory),
            images["v2"],
            "--fleetlock",
            url,
            "--reboot-timeout",
            "10",
            "--no-tls-verify",
            "--json",
        )
    host = report(blocked)["host1"]
    assert str(host["error"]).startswith(
        f"no FleetLock reboot slot within 10 s in group default of {url}: "
        "HTTP 500 failed_lock: all 1 semaphore slots currently locked"
    )
    assert host["failure"] == "fleetlock"
    assert (host["rolled_back"], host["rollback_verified"]) == (
        True,
        True,
    )  # staged deployment dropped
    assert hosts.hosts[0].status()["deployments"][0]["booted"] is True
