"""One host's steps as the user sees them in its report (in-process fake hosts, fakehost.py,
answering the commands hostrun sends): what the preflight says, a host another rollout
locked between the preflight and the change, a reboot command that fails or is sent
unprivileged, a host an interrupted run left rebooting, what a failed poll is called, and
the kind and hint of a failed verification."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from nestcustom import proc
from nestcustom.deploy import hostlock
from nestcustom.deploy.hostfailures import HostFailed
from nestcustom.deploy.hostrun import HostRun, Owner, RolloutOptions
from nestcustom.deploy.hoststatus import parse_status
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.kargs import KargsPlan
from nestcustom.deploy.report import HostReport
from nestcustom.deploy.rollout import rollout
from nestcustom.deploy.signals import StopFlags
from nestcustom.deploy.ssh import Connection, Failure, SshError
from tests.deploy.fakehost import CMDLINE, FakeHost, deployment, result
from tests.deploy.test_rollout_steps import DIGEST, TARGET, deploy

OTHER = hostlock.LockOwner("f" * 32, "elsewhere:1", "/srv/other.jsonl", time.time() - 90)


class LockedAtTheChange(FakeHost):
    """Another rollout takes the host's lock between this one's preflight and its change."""

    def _script(self, script: str, args: list[str]) -> proc.Result:
        if script.startswith(hostlock.TAKE_SCRIPT):
            self.commands.append("change")
            return result(hostlock.BUSY_EXIT, f"lock: busy {OTHER.line()}\n")
        return super()._script(script, args)


class RebootRefused(FakeHost):
    """`systemctl reboot` fails on the host (not a dropped connection); records privilege."""

    def __init__(self, name: str, refuse: bool) -> None:
        super().__init__(name)
        self.refuse = refuse
        self.privileged: list[tuple[str, bool]] = []

    def run(self, command: Any, *, privileged: bool = False, **more: Any) -> proc.Result:
        self.privileged.append((" ".join(command), privileged))
        if self.refuse and list(command) == ["systemctl", "reboot"]:
            raise SshError(self.host, Failure.COMMAND, "systemctl reboot failed (exit 1): "
                           "Access denied", returncode=1, stderr="Access denied")  # fmt: skip
        return super().run(command, privileged=privileged, **more)


class PollRefused(FakeHost):
    """The boot-id poll fails on the host after the reboot (sudo refuses it)."""

    def script(self, script: str, *args: str, **more: Any) -> proc.Result:
        return Connection.script(self, script, *args, **more)  # names the script as hostrun does

    def _script(self, script: str, args: list[str]) -> proc.Result:
        if script.startswith("old=$1"):
            self._reachable()
            raise SshError(self.host, Failure.COMMAND, "sh failed", returncode=1,
                           stderr="sudo: a password is required")  # fmt: skip
        return super()._script(script, args)


def run_of(tmp_path: Path, host: FakeHost, options: RolloutOptions | None = None) -> HostRun:
    journal = Journal.create(tmp_path / "j.jsonl", "rollout", {"id": "0" * 32})
    owner = Owner("0" * 32, str(tmp_path / "j.jsonl"), "here:1")
    return HostRun(host.host, host, TARGET, options or RolloutOptions(), journal,
                   lambda *_: None, StopFlags(), owner)  # fmt: skip


def only(tmp_path: Path, host: FakeHost, options: RolloutOptions | None = None) -> HostReport:
    return deploy(tmp_path, [host], options)[host.host.name]


def test_the_preflight_says_what_the_host_boots_and_its_rpm_ostree(tmp_path: Path) -> None:
    report = only(tmp_path, FakeHost("h1"))
    assert report.steps[0].step == "preflight"
    assert report.steps[0].detail.endswith("; rpm-ostree 2022.16")


def test_a_host_locked_by_another_rollout_at_the_change_is_busy(tmp_path: Path) -> None:
    report = only(tmp_path, LockedAtTheChange("h1"))
    assert report.outcome == "busy"
    assert report.error is not None
    assert report.error.startswith(f"busy: rollout {OTHER.rollout} (controller elsewhere:1")


def test_a_reboot_the_host_refuses_fails_the_reboot_step(tmp_path: Path) -> None:
    host = RebootRefused("h1", refuse=True)
    report = only(tmp_path, host, RolloutOptions(reboot_timeout=1))
    assert (report.outcome, report.failure) == ("failed", "reboot")
    assert report.error == "systemctl reboot failed (exit 1): Access denied"


def test_the_reboot_is_sent_privileged(tmp_path: Path) -> None:
    host = RebootRefused("h1", refuse=False)
    assert only(tmp_path, host).outcome == "updated"
    assert ("systemctl reboot", True) in host.privileged


def test_a_failed_poll_after_the_reboot_is_named_as_reading_the_boot_id(tmp_path: Path) -> None:
    report = only(tmp_path, PollRefused("h1"), RolloutOptions(reboot_timeout=5))
    assert report.outcome == "failed"
    assert report.error == "reading the boot id failed (exit 1): sudo: a password is required"


def test_a_host_left_rebooting_is_waited_for_at_the_preflight(tmp_path: Path) -> None:
    host = FakeHost("h1")
    host.down_until = time.monotonic() + 0.5  # still down when this run starts
    run = run_of(tmp_path, host, RolloutOptions(reboot_timeout=30))
    run.resumed = run.was_rebooting = True
    [report] = rollout([run], 1, 1, 0, lambda *_: None)
    assert report.outcome == "updated", report.error


def test_an_unhealthy_host_is_told_where_to_look(tmp_path: Path) -> None:
    host = FakeHost("h1")
    host.unhealthy = ["app.service"]
    report = only(tmp_path, host)
    assert report.hint == (
        "the health lines say which checks failed; `systemctl status UNIT` on the host says why"
    )


def test_kernel_arguments_missing_after_the_boot_are_a_kernel_arguments_failure(
    tmp_path: Path,
) -> None:
    host = FakeHost("h1")
    host.deployments = [deployment(DIGEST[7:], DIGEST, True, False)]
    run = run_of(tmp_path, host)
    run.after = parse_status(host.status_json())
    run.kargs = KargsPlan(("--append=nosmt",), ("nosmt",), ())
    run.cmdline_after = CMDLINE
    with pytest.raises(HostFailed) as caught:
        run.verify()
    assert (caught.value.message, caught.value.failure, caught.value.hint) == (
        "on the target but /proc/cmdline: nosmt is missing",
        "kernel-arguments",
        "rpm-ostree kargs on the host shows the arguments it boots with",
    )
