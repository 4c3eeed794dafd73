"""A rollout's kernel-argument step (hostkargs.apply, HostRun.apply_kargs) on a host made of
this machine: the commands run for real with sh (test_trust_check_fast's LocalConn), and
`rpm-ostree` is the fleet's host emulator (tests/universe/fleet/emulator, contract section
2, "Kernel arguments") with its state in the test's directory. What the rollout gets: the
plan, the staged deployment's arguments afterwards, the journal row a --resume reads, or
the failure that stops the host. (The universe tests run the same over SSH.)"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from nestcustom import proc
from nestcustom.deploy.hostfailures import HostFailed
from nestcustom.deploy.hostkargs import Applied, KargsFailed, apply
from nestcustom.deploy.hostrun import HostRun, Owner, RolloutOptions
from nestcustom.deploy.hoststatus import HostFacts, parse_status
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal, read_rows
from nestcustom.deploy.kargs import ImageKargs
from nestcustom.deploy.signals import StopFlags
from nestcustom.deploy.ssh import Connection
from nestcustom.deploy.target import Target
from tests.deploy.test_trust_check_fast import LocalConn

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/etc/containers").is_dir(),
    reason="root (a mount namespace per script) and /etc/containers (scripts/setup-host)",
)

EMULATOR = Path(__file__).parents[1] / "universe" / "fleet" / "emulator"
DIGEST = "sha256:" + "3" * 64
OTHER = "sha256:" + "4" * 64
# The emulator, its state under the test's directory instead of the host's /var and /etc.
WRAPPER = """#!{python}
import sys
from pathlib import Path
sys.path.insert(0, {emulator!r})
import rpm_ostree_host as emu
state = Path({state!r})
emu.STATE = state / "deployments.json"
emu.FAULTS = state / "faults"
emu.VERSION_FILE = state / "version"
emu.STAGED_LOCKED = state / "staged-locked"
sys.exit(emu.main(sys.argv[1:]))
"""


@dataclass
class KargsConn(LocalConn):
    """LocalConn with `run` too (hostkargs reads `rpm-ostree kargs` with it)."""

    privileged: list[bool] = field(default_factory=list)

    def run(
        self, command: list[str], *, privileged: bool = False, check: bool = True,
        timeout: float = 600,
    ) -> proc.Result:  # fmt: skip
        self.privileged.append(privileged)
        return super().script('exec "$@"', *command, check=check, timeout=timeout, name=command[0])

    def script(self, script: str, *args: str, privileged: bool = False, **more: Any) -> proc.Result:
        self.privileged.append(privileged)
        return super().script(script, *args, **more)


@dataclass(frozen=True)
class EmuHost:
    conn: KargsConn
    state: Path

    def deployments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = json.loads((self.state / "deployments.json").read_text())
        return result

    def staged_kargs(self) -> list[str]:
        staged = next(d for d in self.deployments() if d["staged"])
        return [a for a in staged["_kargs"] if not a.startswith("ostree=")]

    def fault(self, name: str, value: str = "1") -> None:
        (self.state / "faults").mkdir(exist_ok=True)
        (self.state / "faults" / name).write_text(value)


@pytest.fixture
def host(tmp_path: Path) -> EmuHost:
    """A host booted on its base with the target image `DIGEST` staged (just rebased)."""
    etc, bin_dir, state = tmp_path / "etc", tmp_path / "bin", tmp_path / "state"
    for directory in (etc, bin_dir, state):
        directory.mkdir()
    tool = bin_dir / "rpm-ostree"
    tool.write_text(WRAPPER.format(python=sys.executable, emulator=str(EMULATOR), state=str(state)))
    tool.chmod(0o755)
    conn = KargsConn(etc, bin_dir, tmp_path / "verified")
    emu = EmuHost(conn, state)
    conn.run(["rpm-ostree", "status"])  # the emulator's first state: the base, booted
    (base,) = emu.deployments()
    staged = {
        **{k: v for k, v in base.items() if k != "origin"},
        "id": "nestos-" + "c" * 64 + ".0",
        "checksum": "c" * 64,
        "booted": False,
        "staged": True,
        "container-image-reference": f"ostree-unverified-registry:r/x@{DIGEST}",
        "container-image-reference-digest": DIGEST,
    }
    (state / "deployments.json").write_text(json.dumps([staged, base]))
    conn.scripts.clear()
    conn.privileged.clear()
    return emu


def facts(kargs_d: tuple[tuple[str, str], ...] = (), arch: str = "x86_64") -> HostFacts:
    return HostFacts(
        parse_status(json.dumps({"deployments": []})), arch, "m", "b", (2022, 16),
        cmdline="BOOT_IMAGE=/vmlinuz console=tty0 quiet", kargs_d=kargs_d,
    )  # fmt: skip


def kargs_apply(host: EmuHost, image: ImageKargs, facts_: HostFacts | None = None) -> Applied:
    return apply(cast(Connection, host.conn), image, facts_ or facts())


# -- hostkargs.apply ------------------------------------------------------------------------


def test_the_images_arguments_are_applied_to_the_staged_deployment_and_read_back(
    host: EmuHost,
) -> None:
    before = host.staged_kargs()
    assert "quiet" in before and "console=ttyS0,115200n8" in before
    image = ImageKargs(
        append=("nosmt=force",), delete=("quiet",), replace=("console=ttyS0,115200n8=ttyS1",)
    )
    applied = kargs_apply(host, image)
    assert applied.plan.options == (
        "--replace=console=ttyS0,115200n8=ttyS1",
        "--delete-if-present=quiet",
        "--append-if-missing=nosmt=force",
    )
    assert (applied.plan.present, applied.plan.absent) == (
        ("nosmt=force", "console=ttyS1"), ("quiet", "console=ttyS0,115200n8"),
    )  # fmt: skip
    after = host.staged_kargs()
    expected = [a for a in before if a != "quiet"] + ["nosmt=force"]
    expected[expected.index("console=ttyS0,115200n8")] = "console=ttyS1"
    assert after == expected
    # the place of console= is kept (the last console= is the main one)
    assert after.index("console=ttyS1") == before.index("console=ttyS0,115200n8")
    assert "quiet" not in after and after[-1] == "nosmt=force"
    # The status read back in the same command: the target still staged, booted unchanged.
    assert applied.status is not None and applied.status.staged is not None
    assert applied.status.staged.image_digest == DIGEST
    assert host.conn.scripts == ["rpm-ostree", "rpm-ostree kargs"]
    assert host.conn.privileged == [True, True]  # read and change both as root


def test_a_host_that_already_has_them_runs_no_change(host: EmuHost) -> None:
    state = (host.state / "deployments.json").read_text()
    applied = kargs_apply(host, ImageKargs(append=("quiet",), delete=("rhgb",)))
    assert applied == Applied(applied.plan, None)
    assert applied.plan.options == () and applied.plan.present == ("quiet",)
    assert applied.plan.absent == ("rhgb",)
    assert host.conn.scripts == ["rpm-ostree"]  # the read only
    assert (host.state / "deployments.json").read_text() == state


def test_arguments_for_another_architecture_are_not_applied(host: EmuHost) -> None:
    image = ImageKargs(append=("nosmt=force",), match_architectures=("aarch64",))
    applied = kargs_apply(host, image, facts(arch="x86_64"))
    assert applied.plan.options == () and applied.plan.present == ()
    assert "nosmt=force" not in host.staged_kargs()
    on_arm = kargs_apply(host, image, facts(arch="aarch64"))
    assert on_arm.plan.present == ("nosmt=force",) and "nosmt=force" in host.staged_kargs()


def test_what_the_booted_images_kargs_d_appended_and_the_new_one_drops_is_removed(
    host: EmuHost,
) -> None:
    kargs_d = (("10-site.toml", 'kargs = ["quiet", "audit=1"]\n'), ("README", "not read"))
    applied = kargs_apply(host, ImageKargs(append=("audit=1", "nosmt=force")), facts(kargs_d))
    # bootc's rule: the difference of the two kargs.d (audit=1 was the booted image's too).
    assert applied.plan.options == ("--delete-if-present=quiet", "--append-if-missing=nosmt=force")
    assert (applied.plan.present, applied.plan.absent) == (("nosmt=force",), ("quiet",))
    staged = host.staged_kargs()
    assert "quiet" not in staged and "nosmt=force" in staged and "audit=1" not in staged


def test_an_unreadable_kargs_d_file_on_the_host_stops_it_before_any_change(
    host: EmuHost,
) -> None:
    state = (host.state / "deployments.json").read_text()
    with pytest.raises(KargsFailed) as caught:
        kargs_apply(host, ImageKargs(append=("a=1",)), facts((("10-x.toml", "kargs = 3"),)))
    assert caught.value.message.startswith("/usr/lib/bootc/kargs.d/10-x.toml on the host: ")
    assert caught.value.hint == "fix or remove that file on the host"
    assert host.conn.scripts == [] and (host.state / "deployments.json").read_text() == state


def test_rpm_ostree_kargs_failing_is_said_with_its_error(host: EmuHost) -> None:
    host.fault("transaction")
    with pytest.raises(KargsFailed) as caught:
        kargs_apply(host, ImageKargs(append=("nosmt=force",)))
    assert caught.value.message == (
        "rpm-ostree kargs --append-if-missing=nosmt=force failed: "
        "error: Transaction in progress: rebase"
    )
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("the staged deployment keeps the image")
    assert "nosmt=force" not in host.staged_kargs()


def test_the_last_line_rpm_ostree_printed_is_the_one_said(host: EmuHost) -> None:
    real = host.conn.bin / "rpm-ostree"
    real.rename(host.conn.bin / "rpm-ostree-emu")
    real.write_text(
        '#!/bin/sh\n[ "$1 $2" = "kargs --append-if-missing=nosmt=force" ] || exec rpm-ostree-emu "$@"\n'
        'printf "note: \\033[1mcontacting the daemon\\n\\nerror: No key \\047nosmt\\047\\n\\n" >&2\n'
        "exit 1\n"
    )
    real.chmod(0o755)
    with pytest.raises(KargsFailed) as caught:
        kargs_apply(host, ImageKargs(append=("nosmt=force",)))
    assert caught.value.message == (
        "rpm-ostree kargs --append-if-missing=nosmt=force failed: error: No key 'nosmt'"
    )


def test_arguments_the_read_back_does_not_show_are_named(host: EmuHost) -> None:
    """An rpm-ostree that says yes and changes nothing (the read back is what counts)."""
    real = host.conn.bin / "rpm-ostree"
    real.rename(host.conn.bin / "rpm-ostree-emu")
    real.write_text(
        '#!/bin/sh\n[ "$1 $2" = "kargs --append-if-missing=nosmt=force" ] && exit 0\n'
        'exec rpm-ostree-emu "$@"\n'
    )
    real.chmod(0o755)
    with pytest.raises(KargsFailed) as caught:
        kargs_apply(host, ImageKargs(append=("nosmt=force",)))
    assert caught.value.message == (
        "after rpm-ostree kargs the staged deployment's arguments: nosmt=force is missing"
    )


# -- HostRun.apply_kargs ----------------------------------------------------------------------


def host_run(tmp_path: Path, host: EmuHost, image: ImageKargs) -> HostRun:
    target = Target(f"r/x@{DIGEST}", DIGEST, "amd64", kargs=image)
    journal = Journal.create(
        tmp_path / "j.jsonl",
        "rollout",
        {"id": "7" * 32, "target": target.pinned, "hosts": ["h1"], "options": {}},
    )
    run = HostRun(
        Host("h1", "127.0.0.1", 22), cast(Connection, host.conn), target, RolloutOptions(),
        journal, lambda *_: None, StopFlags(), Owner("7" * 32, "/j", "here:1"),
    )  # fmt: skip
    run.facts = facts()
    return run


def kargs_rows(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows = [row for _, row in read_rows(tmp_path / "j.jsonl")[1:]]
    return [(r["host"], r["data"]) for r in rows if r["step"] == "kargs"]


def test_a_host_runs_kargs_records_them_for_resume_and_says_what_changed(
    tmp_path: Path, host: EmuHost
) -> None:
    run = host_run(tmp_path, host, ImageKargs(append=("nosmt=force",), delete=("quiet",)))
    assert run.apply_kargs() == "; kernel arguments +nosmt=force -quiet"
    assert run.kargs is not None and run.kargs.present == ("nosmt=force",)
    run.journal.close()
    assert kargs_rows(tmp_path) == [
        (
            "h1",
            {
                "present": ["nosmt=force"],
                "absent": ["quiet"],
                "cmdline": "BOOT_IMAGE=/vmlinuz console=tty0 quiet",
            },
        )
    ]


def test_a_host_that_already_has_them_says_so(tmp_path: Path, host: EmuHost) -> None:
    run = host_run(tmp_path, host, ImageKargs(append=("quiet",)))
    assert run.apply_kargs() == "; kernel arguments +quiet (already so)"
    run.journal.close()
    assert [data["present"] for _, data in kargs_rows(tmp_path)] == [["quiet"]]


def test_a_failing_kargs_step_fails_the_host_as_kernel_arguments(
    tmp_path: Path, host: EmuHost
) -> None:
    host.fault("transaction")
    run = host_run(tmp_path, host, ImageKargs(append=("nosmt=force",)))
    with pytest.raises(HostFailed) as caught:
        run.apply_kargs()
    assert caught.value.failure == "kernel-arguments"
    assert "Transaction in progress" in caught.value.message
    assert caught.value.hint is not None and "rpm-ostree kargs" in caught.value.hint
    assert run.kargs is None
    run.journal.close()
    assert kargs_rows(tmp_path) == []  # nothing for a resume to check after a reboot


def test_a_staged_deployment_that_is_not_the_target_after_kargs_fails_the_host(
    tmp_path: Path, host: EmuHost
) -> None:
    deployments = host.deployments()
    deployments[0]["container-image-reference-digest"] = OTHER  # someone rebased meanwhile
    (host.state / "deployments.json").write_text(json.dumps(deployments))
    run = host_run(tmp_path, host, ImageKargs(append=("nosmt=force",)))
    with pytest.raises(HostFailed) as caught:
        run.apply_kargs()
    assert caught.value.message.startswith("after rpm-ostree kargs the staged deployment is ")
    assert OTHER in caught.value.message
    assert run.kargs is None
