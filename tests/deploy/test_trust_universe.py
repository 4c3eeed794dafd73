"""Issue 11's defects, each on real sshd test hosts: journals, FleetLock, host locks,
resume after a crash or a halt, SP1 hosts, host keys, status, the second Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import ORIGIN, FleetFactory, digest_of, nestcustom, outcomes, report
from tests.deploy.fleetlock_server import Semaphore, serve_fleetlock
from tests.universe.fleet.harness import TestHost

pytestmark = [pytest.mark.universe, pytest.mark.hosts]


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(process: subprocess.Popen[str], text: str) -> str:
    """stderr lines up to the one containing `text` (the progress of the deploy)."""
    assert process.stderr is not None
    seen = ""
    for line in process.stderr:
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}:\n{seen}")


def wait_for_lock(host: TestHost, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lock = host.lock()
        if lock:
            return lock
        time.sleep(0.2)
    raise AssertionError("the host lock was never taken")


def test_a_journal_belongs_to_exactly_one_rollout(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    inventory = str(hosts.inventory(tmp_path / "hosts.yaml"))
    journal = tmp_path / "j.jsonl"
    v1 = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v1"],
        "--no-tls-verify",
        "--journal",
        str(journal),
    )
    assert v1.returncode == 0, v1.stderr
    written = journal.read_bytes()
    # Reusing the journal for another rollout used to append a second header, and a
    # resume of that rollout then counted v1's "done" rows as v2's: exit 0, hosts on v1.
    v2 = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v2"],
        "--no-tls-verify",
        "--journal",
        str(journal),
    )
    assert v2.returncode == 2
    assert f"error: {journal} already exists: a journal belongs to exactly one rollout" in v2.stderr
    resumed = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v2"],
        "--no-tls-verify",
        "--resume",
        str(journal),
    )
    assert resumed.returncode == 2
    assert f"error: {journal}:1:1: this journal is a rollout of " in resumed.stderr
    both = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v1"],
        "--no-tls-verify",
        "--resume",
        str(journal),
        "--journal",
        str(tmp_path / "other.jsonl"),
    )
    assert both.returncode == 2 and "--journal cannot be combined with --resume" in both.stderr
    assert journal.read_bytes() == written
    assert hosts.hosts[0].booted_digest() == digest_of(images["v1"])


def test_fleetlock_slot_released_when_a_host_boots_the_old_deployment(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    hosts.hosts[0].inject("boots-old")
    semaphore = Semaphore(slots=1)
    with serve_fleetlock(semaphore=semaphore) as url:
        result = nestcustom(
            tmp_path,
            "deploy",
            "-i",
            str(hosts.inventory(tmp_path / "hosts.yaml")),
            images["v1"],
            "--max-failures",
            "2",
            "--fleetlock",
            url,
            "--reboot-timeout",
            "30",
            "--no-tls-verify",
            "--json",
        )
    by_host = report(result)
    assert by_host["host1"]["error"].startswith("came back on ")
    assert (by_host["host1"]["rolled_back"], by_host["host1"]["rollback_verified"]) == (True, True)
    assert by_host["host2"]["outcome"] == "updated"  # the slot host1 took was given back
    assert len(semaphore.taken) == 2 and semaphore.holders == set()


def test_two_rollouts_at_once_the_second_finds_the_host_busy(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    host = hosts.hosts[0]
    host.inject("rebase-slow", "5")
    inventory = str(hosts.inventory(tmp_path / "hosts.yaml"))
    first = start(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v1"],
        "--no-tls-verify",
        "--journal",
        str(tmp_path / "a.jsonl"),
    )
    lock = wait_for_lock(host)
    second = nestcustom(
        tmp_path, "deploy", "-i", inventory, images["v2"], "--no-tls-verify", "--json"
    )
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 1
    busy = report(second)["host1"]
    assert busy["outcome"] == "busy"
    rollout_id = lock.split('"')[3]
    assert busy["error"].startswith(f"busy: rollout {rollout_id} (controller ")
    assert f"journal {tmp_path / 'a.jsonl'}" in busy["error"]
    assert "its controller may still be running" in busy["error"]
    assert host.booted_digest() == digest_of(images["v1"])  # the second changed nothing
    assert len(host.status()["deployments"]) == 2
    assert host.lock() is None  # released once the host was verified


def test_a_dead_rollouts_lock_is_recognised_and_taken_over_on_request(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    host = hosts.hosts[0]
    host.inject("rebase-slow", "3")
    inventory = str(hosts.inventory(tmp_path / "hosts.yaml"))
    dead = start(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v1"],
        "--no-tls-verify",
        "--journal",
        str(tmp_path / "a.jsonl"),
    )
    lock = wait_for_lock(host)
    dead.kill()
    dead.communicate(timeout=60)
    host.clear("rebase-slow")
    time.sleep(4)  # the rebase the dead controller started finishes on the host
    refused = nestcustom(
        tmp_path, "deploy", "-i", inventory, images["v2"], "--no-tls-verify", "--json"
    )
    assert refused.returncode == 1
    row = report(refused)["host1"]
    assert row["outcome"] == "busy" and "its controller process is gone" in row["error"]
    rollout_id = lock.split('"')[3]
    assert f"--take-over {rollout_id}" in row["hint"]
    taken = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v2"],
        "--no-tls-verify",
        "--json",
        "--take-over",
        rollout_id,
    )
    assert taken.returncode == 0, taken.stderr
    assert host.booted_digest() == digest_of(images["v2"]) and host.lock() is None


def test_sigkill_while_hosts_reboot_then_resume_waits_for_them(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    host = hosts.hosts[0]
    host.inject("slow", "6")  # sshd starts 6 s into each boot
    inventory = str(hosts.inventory(tmp_path / "hosts.yaml"))
    journal = tmp_path / "j.jsonl"
    crashed = start(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v1"],
        "--no-tls-verify",
        "--journal",
        str(journal),
    )
    read_until(crashed, "host1 | wait start")
    crashed.kill()
    crashed.communicate(timeout=60)
    resumed = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        inventory,
        images["v1"],
        "--no-tls-verify",
        "--resume",
        str(journal),
        "--json",
    )
    assert resumed.returncode == 0, resumed.stderr
    row = report(resumed)["host1"]
    assert (row["outcome"], row["before"], row["after"]) == (
        "updated",
        ORIGIN,
        digest_of(images["v1"]),
    )
    assert host.lock() is None  # the crashed run's lock, re-entered by its resume and released


def test_resume_after_a_halt_is_the_same_rollout_continued(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(4)
    h1, h2, h3, h4 = hosts.hosts
    h2.inject("rebase-fails", "injected failure")
    all_four = hosts.inventory(tmp_path / "all.yaml")
    three = tmp_path / "three.yaml"
    three.write_text(all_four.read_text().rsplit("  - {name: host4", 1)[0])
    journal = tmp_path / "j.jsonl"
    first = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(three),
        images["v1"],
        "--no-tls-verify",
        "--journal",
        str(journal),
        "--json",
    )
    assert outcomes(first) == {"host1": "updated", "host2": "failed", "host3": "skipped"}
    h2.clear("rebase-fails")
    # Someone rolls host1 back after the journal said it was done.
    h1.exec("rpm-ostree", "rollback")
    h1.exec("systemctl", "reboot")
    time.sleep(2)
    h1.wait_ready()
    h2_boot = h2.boot_id()
    explicit = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(all_four),
        images["v1"],
        "--no-tls-verify",
        "--resume",
        str(journal),
        "--max-failures",
        "5",
    )
    assert explicit.returncode == 2
    assert "--max-failures differs from the rollout being resumed (1 there)" in explicit.stderr
    resumed = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(all_four),
        images["v1"],
        "--no-tls-verify",
        "--resume",
        str(journal),
        "--json",
    )
    assert resumed.returncode == 1
    by_host = report(resumed)
    assert set(by_host) == {
        "host1",
        "host2",
        "host3",
    }  # host4 is in the inventory, not in the rollout
    assert by_host["host1"]["outcome"] == "drifted"
    assert by_host["host1"]["error"] == f"the journal says updated, but the host now boots {ORIGIN}"
    # The failure keeps its whole report and is not redeployed; the budget is still spent.
    assert by_host["host2"] == report(first)["host2"]
    assert by_host["host3"]["outcome"] == "skipped"
    assert h2.boot_id() == h2_boot and h2.booted_digest() is None
    assert h3.booted_digest() is None and h4.booted_digest() is None


def test_an_sp1_host_is_rebased_with_experimental(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2, versions={"host2": "2022.8"})
    sp1 = hosts.hosts[1]
    plain = sp1.exec(
        "rpm-ostree", "rebase", "ostree-unverified-registry:" + images["v1"], check=False
    )
    assert plain == ""  # refused: the message is on stderr
    result = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(hosts.inventory(tmp_path / "hosts.yaml")),
        images["v1"],
        "--batch",
        "2",
        "--no-tls-verify",
        "--json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    steps = {s["step"]: s["detail"] for s in report(result)["host2"]["steps"]}
    assert steps["preflight"].endswith("rpm-ostree 2022.8")
    assert all(h.booted_digest() == digest_of(images["v1"]) for h in hosts.hosts)


def test_unknown_host_keys_are_refused_unless_asked(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    inventory = str(hosts.inventory(tmp_path / "hosts.yaml"))
    hosts.known_hosts.write_text("")  # a host never seen before
    listed = nestcustom(tmp_path, "status", "-i", inventory)
    assert listed.returncode == 1
    assert "host1: host key unknown: Host key verification failed." in listed.stdout
    deploy = nestcustom(
        tmp_path, "deploy", "-i", inventory, images["v1"], "--no-tls-verify", "--json"
    )
    assert report(deploy)["host1"]["error"].startswith("host key unknown")
    assert hosts.known_hosts.read_text() == "" and hosts.hosts[0].booted_digest() is None
    trusted = nestcustom(tmp_path, "status", "-i", inventory, "--accept-new-host-keys")
    assert trusted.returncode == 0, trusted.stdout
    assert hosts.hosts[0].host_key_line().split()[1] in hosts.known_hosts.read_text()


def test_status_fails_when_a_host_cannot_be_read_and_says_why(
    fleet: FleetFactory, tmp_path: Path
) -> None:
    hosts = fleet(3)
    hosts.hosts[1].stop()
    hosts.hosts[2].refuse_auth()
    listed = nestcustom(tmp_path, "status", "-i", str(hosts.inventory(tmp_path / "hosts.yaml")))
    assert listed.returncode == 1
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(f"host1: {ORIGIN}")
    assert lines[2].startswith("host2: unreachable: ssh: connect to host 127.0.0.1 port ")
    assert "unreachable: unreachable" not in listed.stdout
    assert (
        lines[3] == "host3: authentication refused: root@127.0.0.1: Permission denied (publickey)."
    )


def test_a_second_ctrl_c_while_waiting_still_reports_every_host(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    hosts.hosts[0].inject("slow", "60")
    journal = tmp_path / "j.jsonl"
    process = start(
        tmp_path,
        "deploy",
        "-i",
        str(hosts.inventory(tmp_path / "hosts.yaml")),
        images["v1"],
        "--no-tls-verify",
        "--journal",
        str(journal),
    )
    read_until(process, "host1 | wait start")
    process.send_signal(signal.SIGINT)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert (
        "host1  interrupted" in out
        and "stopped while it was rebooting; finish with --resume" in out
    )
    assert "host2  skipped" in out
    assert f"interrupted by SIGINT: finish with --resume {journal}" in err
