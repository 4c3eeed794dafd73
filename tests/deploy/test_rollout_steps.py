"""What a rollout does to each host and reports, against in-process fake hosts (fakehost.py):
fast checks of the rules the fleet emulator tests end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.deploy.fleetlock import FleetLock
from nestcustom.deploy.hostrun import HostRun, Owner, RolloutOptions
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.report import KEY_CHANGED, HostReport
from nestcustom.deploy.rollout import rollout
from nestcustom.deploy.signals import StopFlags
from nestcustom.deploy.target import Target
from tests.deploy.fakehost import FakeHost
from tests.deploy.fleetlock_server import Semaphore, serve_fleetlock

DIGEST = "sha256:" + "2" * 64
TARGET = Target(f"r/x@{DIGEST}", DIGEST, "x86_64")


def deploy(
    tmp_path: Path,
    hosts: list[FakeHost],
    options: RolloutOptions | None = None,
    stops: StopFlags | None = None,
    listen: object = None,
) -> dict[str, HostReport]:
    options = options or RolloutOptions(max_failures=len(hosts))
    stops = stops or StopFlags()
    journal = Journal.create(tmp_path / "j.jsonl", "rollout", {"id": "0" * 32})
    owner = Owner("0" * 32, str(tmp_path / "j.jsonl"), "here:1")

    def heard(host: str, step: str, state: str) -> None:
        if callable(listen):
            listen(host, step, state)

    runs = [HostRun(h.host, h, TARGET, options, journal, heard, stops, owner) for h in hosts]
    reports = rollout(runs, options.batch, options.max_failures, 0, heard)
    journal.close()
    return {r.host: r for r in reports}


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    FakeHost.changing, FakeHost.most_changing = set(), 0


def test_batch_n_never_changes_more_than_n_hosts_at_once(tmp_path: Path) -> None:
    hosts = [FakeHost(f"h{i}") for i in range(6)]
    reports = deploy(tmp_path, hosts, RolloutOptions(batch=2, max_failures=1))
    assert {r.outcome for r in reports.values()} == {"updated"}
    assert FakeHost.most_changing == 2
    # Queued hosts are read ahead while others reboot, once: their turn starts with the rebase.
    assert all(h.commands[:2] == ["preflight", "change"] for h in hosts)
    assert all(h.commands.count("preflight") == 1 for h in hosts)


def test_a_host_that_failed_before_anything_was_staged_is_neither_rolled_back_nor_rebooted(
    tmp_path: Path,
) -> None:
    host = FakeHost("h1")
    host.rebase_fails = "Pulling manifest: manifest unknown"
    report = deploy(tmp_path, [host])["h1"]
    assert (report.outcome, report.failure) == ("failed", "rebase")
    assert report.error == "rpm-ostree rebase failed: error: Pulling manifest: manifest unknown"
    assert (report.rolled_back, report.rollback_verified, report.rollback_line()) == (
        False,
        None,
        None,
    )
    # read, never changed again: no reboot, no rollback
    assert host.commands == ["preflight", "change", "rpm-ostree status --json", "release"]
    assert [s.step for s in report.steps] == ["preflight", "rebase"]


def test_a_failure_to_take_the_host_lock_is_reported_as_that(tmp_path: Path) -> None:
    host = FakeHost("h1")
    host.lock_fails = True
    report = deploy(tmp_path, [host])["h1"]
    assert (report.outcome, report.failure) == ("failed", "host-lock")
    assert report.error is not None
    assert report.error.startswith("taking the host lock /var/lib/nestcustom/rollout.lock failed")
    assert "rebase" not in report.error.split(":")[0]
    # nothing to release, nothing to undo
    assert host.commands == ["preflight", "change", "rpm-ostree status --json"]


def test_a_host_whose_key_changed_at_the_reboot_is_not_called_rolled_back(tmp_path: Path) -> None:
    host = FakeHost("h1")
    host.key_changes_at_reboot = True
    report = deploy(tmp_path, [host])["h1"]
    assert (report.outcome, report.failure) == ("failed", "key-changed")
    assert (
        report.rollback_line()
        == KEY_CHANGED
        == ("none sent: running the target, key changed, not verified")
    )
    assert not report.rolled_back and report.after == f"{DIGEST}?"
    assert report.error and report.error.startswith("came back with another host key")
    assert host.commands == ["preflight", "change", "systemctl reboot"]


def test_a_host_on_the_target_with_a_failed_unit_is_rolled_back_and_says_which(
    tmp_path: Path,
) -> None:
    host = FakeHost("h1")
    host.unhealthy = ["app.service"]
    report = deploy(tmp_path, [host])["h1"]
    assert (report.outcome, report.failure) == ("failed", "unhealthy")
    assert report.health == ("the system is degraded; failed units: app.service",)
    assert (report.rolled_back, report.rollback_verified) == (True, True)
    assert host.booted().get("container-image-reference-digest") is None  # back on the base
    assert "rpm-ostree rollback" in host.commands


def test_a_rollback_that_boots_other_kernel_arguments_is_not_verified(tmp_path: Path) -> None:
    host = FakeHost("h1")
    host.unhealthy = ["app.service"]
    host.rollback_cmdline = host.cmdline.replace(" quiet", "") + " nosmt"
    report = deploy(tmp_path, [host])["h1"]
    assert (report.outcome, report.failure) == ("failed", "unhealthy")
    assert (report.rolled_back, report.rollback_verified) == (True, False)
    assert report.rollback_line() == (
        "NOT verified: booted the previous deployment, but /proc/cmdline is not what "
        "it was before the rollout: missing quiet; new nosmt"
    )
    assert f"NOT verified: {report.steps[-1].detail}" == report.rollback_line()


def test_a_stop_during_the_reboot_wait_still_verifies_that_host(tmp_path: Path) -> None:
    stops = StopFlags()
    hosts = [FakeHost("h1"), FakeHost("h2")]

    def listen(host: str, step: str, state: str) -> None:
        if (host, step, state) == ("h1", "reboot", "ok"):
            stops.soft.set()  # as Ctrl-C does, while h1 reboots

    reports = deploy(tmp_path, hosts, RolloutOptions(max_failures=2), stops, listen)
    assert reports["h1"].outcome == "updated"
    assert [s.step for s in reports["h1"].steps][-2:] == ["wait", "verify"]
    assert reports["h2"].outcome == "skipped"
    assert hosts[1].commands in ([], ["preflight"])  # at most read ahead, never changed


def test_a_fleetlock_slot_is_taken_under_zincatis_id_and_given_back(tmp_path: Path) -> None:
    semaphore = Semaphore(1)
    host = FakeHost("h1")
    host.machine_id = "3d1219c7c4c5404aaa1f6d2a48adfda4"
    with serve_fleetlock(semaphore=semaphore) as url:
        options = RolloutOptions(fleetlock=FleetLock(url, "default"))
        assert deploy(tmp_path, [host], options)["h1"].outcome == "updated"
    ids = {(endpoint, who) for endpoint, who, _ in semaphore.requests}
    zincati = "975228d46dc94622b9bbe16671e2b58d"
    assert ids == {("pre-reboot", zincati), ("steady-state", zincati)}
    assert semaphore.holders == set()


def test_a_failing_fleetlock_server_after_the_rebase_drops_the_staged_deployment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    semaphore = Semaphore(1)
    semaphore.mode = "down-etcd"
    host = FakeHost("h1")
    with serve_fleetlock(semaphore=semaphore) as url:
        lock = FleetLock(url, "default", backoff=0.01)
        report = deploy(tmp_path, [host], RolloutOptions(fleetlock=lock))["h1"]
    assert (report.outcome, report.failure) == ("failed", "fleetlock")
    assert report.error and "failed_sem_init" in report.error
    assert "systemctl reboot" not in host.commands
    assert "rpm-ostree cleanup -p" in host.commands and (
        report.rolled_back,
        report.rollback_verified,
    ) == (True, True)


def test_a_resumed_host_on_the_target_without_its_kernel_arguments_fails_and_says_so(
    tmp_path: Path,
) -> None:
    """The earlier run applied kernel arguments and was stopped while the host rebooted:
    the journalled plan is what the host's /proc/cmdline must show (fakehost: no nosmt)."""
    from nestcustom.deploy.kargs import KargsPlan
    from tests.deploy.fakehost import deployment

    host = FakeHost("h1")
    host.deployments = [deployment(DIGEST[7:], DIGEST, True, False), *host.deployments]
    for booted in host.deployments[1:]:
        booted["booted"] = False
    journal = Journal.create(tmp_path / "j.jsonl", "rollout", {"id": "0" * 32})
    owner = Owner("0" * 32, str(tmp_path / "j.jsonl"), "here:1")
    run = HostRun(host.host, host, TARGET, RolloutOptions(), journal, lambda *_: None,
                  StopFlags(), owner)  # fmt: skip
    run.resumed = True
    run.kargs = KargsPlan((), ("nosmt",), ("quiet",))
    [result] = rollout([run], 1, 1, 0, lambda *_: None)
    assert (result.outcome, result.failure) == ("failed", "kernel-arguments")
    assert result.error == "on the target but /proc/cmdline: nosmt is missing; quiet is still there"
    assert result.rolled_back is False
    run.kargs = KargsPlan((), ("rw",), ("nosmt",))  # what the fake host boots with: fine
    run.steps.clear()
    [result] = rollout([run], 1, 1, 0, lambda *_: None)
    assert result.outcome == "updated"
