"""The build helper's `clamp`, run in a throwaway root by a real POSIX sh with the real rpm:
what a package step leaves behind is a function of the image, never of the clock (install
times and the transaction id re-stamped, new shadow entries dated from the image), and what
a package put under /opt (a link to var/opt on NestOS) is moved into /usr."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.universe.helper_root import HelperRoot

TIMES = "%{NAME} %{INSTALLTIME} %{INSTALLTID}\\n"


def rpm_times(box: HelperRoot) -> dict[str, tuple[int, int]]:
    """Each package's install time and transaction id, as rpm in the root reads them."""
    done = box.sh(f"rpm -qa --qf '{TIMES}'")
    assert done.returncode == 0, done.stderr
    times = {}
    for line in done.stdout.splitlines():
        name, installed, tid = line.split()
        times[name] = (int(installed), int(tid))
    return times


def give(box: HelperRoot, *rpms: Path) -> list[str]:
    """Copy RPM files into the root's /run/rpms; their paths inside the root."""
    (box.root / "run/rpms").mkdir(parents=True, exist_ok=True)
    for rpm in rpms:
        shutil.copyfile(rpm, box.root / "run/rpms" / rpm.name)
    return [f"/run/rpms/{rpm.name}" for rpm in rpms]


INSTALL = ("rpm", "-i", "--justdb", "--nodeps", "--noscripts")


def errors(done: subprocess.CompletedProcess[str]) -> str:
    """What a run wrote to stderr, without the warning Debian's rpm gives for any install."""
    return "".join(
        line for line in done.stderr.splitlines(keepends=True) if not line.startswith("rpm: ")
    )


def test_packages_a_step_adds_are_stamped_from_the_newest_time_the_database_held(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    box.install_rpms(tiny_rpms["nc-alpha"])
    before = rpm_times(box)["nc-alpha"]
    newest = max(before)
    files = give(box, tiny_rpms["nc-beta"], tiny_rpms["nc-gamma"])
    done = box.helper("clamp", *INSTALL, *files)
    assert (done.returncode, errors(done)) == (0, "")
    db = box.path("/usr/share/rpm")
    # Read before rpm opens the database again (a read leaves an empty write-ahead log).
    left = sorted(p.name for p in db.iterdir())
    assert not [n for n in left if n in (".rpm.lock", ".dbenv.lock") or n.startswith("__db.")]
    assert not (db / "rpmdb.sqlite-wal").exists() or (db / "rpmdb.sqlite-wal").stat().st_size
    times = rpm_times(box)
    assert times["nc-alpha"] == before  # what was there is left as it was
    # One transaction id for the step, install times one second apart in database order.
    assert sorted(times[name] for name in ("nc-beta", "nc-gamma")) == [
        (newest + 1, newest + 1),
        (newest + 2, newest + 1),
    ]
    assert not [p for p in (box.root / "tmp").iterdir() if p.name.startswith("nestcustom-clamp")]


def test_the_same_step_on_the_same_database_gives_the_same_times_whenever_it_runs(
    tmp_path: Path, tiny_rpms: dict[str, Path]
) -> None:
    from tests.universe.helper_root import make_root

    results = []
    for run in ("first", "second"):
        box = make_root(tmp_path / run)
        box.install_rpms(tiny_rpms["nc-alpha"])
        files = give(box, tiny_rpms["nc-beta"])
        assert box.helper("clamp", *INSTALL, *files).returncode == 0
        times = rpm_times(box)
        results.append(times["nc-beta"][0] - max(times["nc-alpha"]))
    assert results == [1, 1]


def test_an_empty_database_counts_from_zero(box: HelperRoot, tiny_rpms: dict[str, Path]) -> None:
    files = give(box, tiny_rpms["nc-beta"])
    assert box.helper("clamp", *INSTALL, *files).returncode == 0
    assert rpm_times(box) == {"nc-beta": (1, 1)}


def test_a_step_that_adds_no_package_leaves_the_database_alone(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    box.install_rpms(tiny_rpms["nc-alpha"])
    before = rpm_times(box)
    done = box.helper("clamp", "true")
    assert (done.returncode, done.stderr) == (0, "")
    assert rpm_times(box) == before


def test_rpm_files_of_the_layers_stage_go_after_the_arguments(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    give(box, tiny_rpms["nc-beta"], tiny_rpms["nc-gamma"])
    names = [tiny_rpms[n].name for n in ("nc-beta", "nc-gamma")]
    box.write("/run/rpms/list", "".join(f"0 x {name}\n" for name in names))
    done = box.helper("clamp", "--rpms", "/run/rpms", *INSTALL)
    assert (done.returncode, errors(done)) == (0, "")
    assert sorted(rpm_times(box)) == ["nc-beta", "nc-gamma"]


def test_a_failing_step_keeps_its_status_and_no_program_is_an_error(box: HelperRoot) -> None:
    done = box.helper("clamp", "sh", "-c", "exit 3")
    assert done.returncode == 3
    done = box.helper("clamp")
    assert (done.returncode, done.stderr) == (1, "nestcustom: clamp: no program\n")
    done = box.helper("clamp", "--rpms", "/run/none")
    assert done.returncode == 1
    assert "no RPM list at /run/none/list" in done.stderr


SHADOW = "root:*:19000:0:99999:7:::\nold:$6$abc:18000:0:99999:7:::\n"


def test_users_a_step_adds_get_a_change_date_from_the_image_not_the_clock(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    box.install_rpms(tiny_rpms["nc-alpha"])
    newest = max(rpm_times(box)["nc-alpha"])
    shadow = box.write("/etc/shadow", SHADOW, mode=0o600)
    box.write("/etc/shadow-", SHADOW, mode=0o600)
    inode = shadow.stat().st_ino
    added = "svc:$6$xyz:20999:0:99999:7:::\nlocked:!:20999::::::\nstar:*:20999:0::::"
    done = box.helper("clamp", "sh", "-c", f"printf '%s' '{added}' >>/etc/shadow")
    assert (done.returncode, done.stderr) == (0, "")
    day = (newest + 1) // 86400
    assert shadow.read_text() == SHADOW + (
        f"svc:$6$xyz:{day}:0:99999:7:::\nlocked:!:::::::\nstar:*::0::::\n"
    )
    assert shadow.stat().st_ino == inode and shadow.stat().st_mode & 0o777 == 0o600
    assert box.path("/etc/shadow-").read_text() == SHADOW  # unchanged entries stay as they were
    assert box.left_in_tmp() == []


def test_the_shadow_backup_a_second_useradd_writes_is_clamped_too(box: HelperRoot) -> None:
    # useradd copies shadow to shadow- before it writes: after two users in one step, the
    # backup holds the first one, with the clock's date.
    box.write("/etc/shadow", SHADOW, mode=0o600)
    backup = box.write("/etc/shadow-", SHADOW, mode=0o600)
    done = box.helper("clamp", "sh", "-c", "echo 'one:$6$x:20999:0:99999:7:::' >>/etc/shadow-")
    assert (done.returncode, done.stderr) == (0, "")
    assert backup.read_text() == SHADOW + "one:$6$x:0:0:99999:7:::\n"  # an empty database: day 0


def test_a_shadow_file_whose_new_entries_need_no_change_is_not_rewritten(box: HelperRoot) -> None:
    shadow = box.write("/etc/shadow", SHADOW, mode=0o600)
    done = box.helper("clamp", "sh", "-c", "echo 'locked:!::0:99999:7:::' >>/etc/shadow")
    assert done.returncode == 0
    assert shadow.read_text() == SHADOW + "locked:!::0:99999:7:::\n"


def test_no_shadow_before_the_step_is_no_shadow_clamp(box: HelperRoot) -> None:
    done = box.helper("clamp", "sh", "-c", "echo 'svc:$6$x:20999::::::' >/etc/shadow")
    assert done.returncode == 0
    assert box.path("/etc/shadow").read_text() == "svc:$6$x:20999::::::\n"


@pytest.fixture
def opt_box(box: HelperRoot) -> HelperRoot:
    """A root whose /opt is NestOS's link to var/opt (no /var/opt yet)."""
    (box.root / "opt").symlink_to("var/opt")
    return box


CONF = "/usr/lib/tmpfiles.d/nestcustom-opt.conf"


def test_what_a_step_puts_under_opt_moves_to_usr_lib_opt_and_is_linked_back_at_boot(
    opt_box: HelperRoot,
) -> None:
    opt_box.remove("/usr/lib/tmpfiles.d")  # an image without it gets it
    step = "mkdir -p /opt/agent/bin /opt/.hidden && echo tool >/opt/agent/bin/tool && ln -s agent /opt/alias"
    done = opt_box.helper("clamp", "sh", "-c", step)
    assert done.returncode == 0, done.stderr
    assert opt_box.path("/usr/lib/opt/agent/bin/tool").read_text() == "tool\n"
    assert opt_box.path("/usr/lib/opt/.hidden").is_dir()
    assert opt_box.path("/usr/lib/opt/alias").readlink() == Path("agent")
    assert not (opt_box.root / "var/opt").exists()  # made for the step, taken away after it
    assert sorted(opt_box.path(CONF).read_text().splitlines()) == [
        "L /opt/.hidden - - - - ../../usr/lib/opt/.hidden",
        "L /opt/agent - - - - ../../usr/lib/opt/agent",
        "L /opt/alias - - - - ../../usr/lib/opt/alias",
    ]
    assert sorted(done.stderr.splitlines()) == [
        f"nestcustom: /opt/{n} moved to /usr/lib/opt/{n}, linked back at boot"
        for n in (".hidden", "agent", "alias")
    ]
    assert opt_box.left_in_tmp() == []


def test_opt_entries_from_before_the_step_stay_and_a_second_step_merges(
    opt_box: HelperRoot,
) -> None:
    (opt_box.root / "var/opt/old").mkdir(parents=True)
    assert (
        opt_box.helper(
            "clamp", "sh", "-c", "mkdir -p /opt/agent && echo 1 >/opt/agent/a"
        ).returncode
        == 0
    )
    done = opt_box.helper("clamp", "sh", "-c", "mkdir -p /opt/agent && echo 2 >/opt/agent/b")
    assert done.returncode == 0, done.stderr
    assert (opt_box.root / "var/opt/old").is_dir()  # not the step's: left where it was
    assert not (opt_box.root / "var/opt/agent").exists()
    agent = opt_box.path("/usr/lib/opt/agent")
    assert sorted((p.name, p.read_text()) for p in agent.iterdir()) == [("a", "1\n"), ("b", "2\n")]
    assert opt_box.path(CONF).read_text() == "L /opt/agent - - - - ../../usr/lib/opt/agent\n"


def test_a_file_under_opt_replaces_what_usr_lib_opt_had_by_that_name(opt_box: HelperRoot) -> None:
    opt_box.write("/usr/lib/opt/agent/stale", "old\n")
    done = opt_box.helper("clamp", "sh", "-c", "echo new >/opt/agent")
    assert done.returncode == 0, done.stderr
    assert opt_box.path("/usr/lib/opt/agent").read_text() == "new\n"


def test_a_failing_step_takes_away_the_var_opt_it_made_and_moves_nothing(
    opt_box: HelperRoot,
) -> None:
    done = opt_box.helper("clamp", "sh", "-c", "mkdir -p /opt/agent; exit 2")
    assert done.returncode == 2
    assert not (opt_box.root / "var/opt").exists()
    assert not opt_box.path("/usr/lib/opt").exists()


def test_opt_that_is_a_directory_or_links_elsewhere_is_left_alone(box: HelperRoot) -> None:
    (box.root / "opt").mkdir()
    done = box.helper("clamp", "sh", "-c", "mkdir /opt/agent")
    assert (done.returncode, done.stderr) == (0, "")
    assert (box.root / "opt/agent").is_dir() and not box.path("/usr/lib/opt").exists()
    (box.root / "opt/agent").rmdir()
    (box.root / "opt").rmdir()
    (box.root / "srv/opt").mkdir(parents=True)
    (box.root / "opt").symlink_to("srv/opt")
    done = box.helper("clamp", "sh", "-c", "mkdir /opt/agent")
    assert (done.returncode, done.stderr) == (0, "")
    assert (box.root / "srv/opt/agent").is_dir() and not box.path("/usr/lib/opt").exists()


def fake_export(box: HelperRoot, export: bytes) -> None:
    """An rpmdb whose --exportdb writes `export` (anything else goes to the real one)."""
    (box.root / "run/export").write_bytes(export)
    box.write(
        "/usr/local/bin/rpmdb",
        '#!/bin/sh\n[ "$1" != --exportdb ] || exec cat /run/export\nexec /usr/bin/rpmdb "$@"\n',
        mode=0o755,
    )


def header(*tags: int) -> bytes:
    """An rpm header with these tags, each an INT32 of value 7."""
    index = b"".join(struct.pack(">IIII", tag, 4, 4 * n, 1) for n, tag in enumerate(tags))
    data = struct.pack(">" + "I" * len(tags), *(7 for _ in tags))
    return (
        bytes.fromhex("8eade80100000000") + struct.pack(">II", len(tags), len(data)) + index + data
    )


@pytest.mark.parametrize(
    ("export", "says"),
    [
        (b"\x8e\xad\xe8\x01junk" * 2, "clamp: the rpm database export has no header at byte 0"),
        (b"", "clamp: the rpm database export lacks packages 1"),
        (header(1000, 1004), "clamp: package 1 of the rpm database has no install time"),
    ],
)
def test_an_export_the_clamp_cannot_read_stops_the_step(
    box: HelperRoot, tiny_rpms: dict[str, Path], export: bytes, says: str
) -> None:
    (box.root / "run").mkdir(exist_ok=True)
    fake_export(box, export)
    files = give(box, tiny_rpms["nc-beta"])
    done = box.helper("clamp", *INSTALL, *files)
    assert (done.returncode, errors(done)) == (1, f"nestcustom: {says}\n")
