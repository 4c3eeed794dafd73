"""Who holds a host: hostlock.pid_alive on real processes, and HostRun._check_lock, what a
rollout says of a host another rollout holds (its own and a taken-over lock pass)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import pytest

from nestcustom.deploy.hostfailures import HostBusy
from nestcustom.deploy.hostlock import LOCK_PATH, LockOwner, pid_alive
from nestcustom.deploy.hostrun import HostRun, Owner, RolloutOptions
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.signals import StopFlags
from nestcustom.deploy.ssh import Connection, SshOptions

OURS, THEIRS, OLD = "1" * 32, "2" * 32, "3" * 32
HERE = socket.gethostname()


def dead_pid() -> int:
    """A pid that ran a moment ago and is gone (reaped)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_this_process_is_alive_and_a_reaped_one_is_not() -> None:
    assert pid_alive(f"{HERE}:{os.getpid()}")
    gone = dead_pid()
    assert not pid_alive(f"{HERE}:{gone}")
    # The pid is after the last colon (a host name may hold colons: an IPv6 address).
    assert not pid_alive(f"fe80::1:{gone}")
    assert pid_alive(f"fe80::1:{os.getpid()}")


@pytest.mark.parametrize("controller", ["h:", "h:abc", "nohost", "h:99999999999999999999999"])
def test_a_controller_whose_pid_cannot_be_judged_is_taken_as_running(controller: str) -> None:
    assert pid_alive(controller)  # never take a live rollout's host by mistake


def a_run(take_over: tuple[str, ...] = ()) -> HostRun:
    host = Host("h1", "127.0.0.1", 22)
    owner = Owner(OURS, "/var/j.jsonl", f"{HERE}:{os.getpid()}", take_over)
    conn = Connection(host, SshOptions(Path("/nonexistent")))
    return HostRun(host, conn, None, RolloutOptions(), cast(Journal, None),
                   lambda *_: None, StopFlags(), owner)  # fmt: skip


def line(rollout: str, controller: str, age: float = 3700) -> str:
    return LockOwner(rollout, controller, "/srv/other.jsonl", time.time() - age).line()


def test_our_own_lock_and_one_we_take_over_let_the_host_go_on() -> None:
    a_run()._check_lock(line(OURS, "elsewhere:1"))  # no HostBusy: the host goes on
    a_run((OLD, THEIRS))._check_lock(line(THEIRS, "elsewhere:1"))
    with pytest.raises(HostBusy):  # ... and only those
        a_run((OLD,))._check_lock(line(THEIRS, "elsewhere:1"))


def busy(run: HostRun, text: str) -> HostBusy:
    with pytest.raises(HostBusy) as caught:
        run._check_lock(text)
    return caught.value


def test_another_rollouts_lock_says_who_holds_it_and_how_to_take_it() -> None:
    pid = dead_pid()
    found = busy(a_run((OLD,)), line(THEIRS, f"{HERE}:{pid}"))
    assert found.message == (
        f"busy: rollout {THEIRS} (controller {HERE}:{pid}, "
        "journal /srv/other.jsonl) holds this host since 1 h 1 min ago; "
        "its controller process is gone"
    )
    assert found.hint == (
        "let it finish, or finish it with --resume /srv/other.jsonl; if it is dead, "
        f"take its hosts over with --take-over {THEIRS}"
    )


def test_a_controller_that_still_runs_here_is_not_called_gone() -> None:
    found = busy(a_run(), line(THEIRS, f"{HERE}:{os.getpid()}", age=30))
    assert found.message.endswith(
        "holds this host since 0 min ago; its controller may still be running"
    )


def test_a_controller_on_another_machine_is_never_judged_gone() -> None:
    found = busy(a_run(), line(THEIRS, f"not-{HERE}:{dead_pid()}"))
    assert found.message.endswith("its controller may still be running")


def test_a_lock_that_is_not_a_rollouts_is_shown_as_it_is() -> None:
    found = busy(a_run(), "someone's notes")
    assert found.message == (
        'locked by something that is not a nestcustom rollout: "someone\'s notes"'
    )
    assert found.hint == f"look at {LOCK_PATH} on the host"
