"""Every bad input the issue lists, through the command line: a clear error, the right exit code,
no image tagged, no temporary root, mount namespace or process left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.base.conftest import BASE_CACHE, ROOT, nestcustom, podman
from tests.universe.iso.build import Iso

pytestmark = pytest.mark.universe

SMALL = "bash,coreutils,rpm"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def tag() -> Iterator[str]:
    reference = f"localhost/nctest-bad/{uuid.uuid4().hex[:10]}:latest"
    yield reference
    podman("rmi", "-f", reference)


def processes_mentioning(path: Path) -> list[str]:
    """Processes whose command line, root or working directory is under `path`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            places = [os.readlink(entry / "root"), os.readlink(entry / "cwd")]
        except OSError:
            continue
        if str(path) in cmdline or any(p.startswith(str(path)) for p in places):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def mounts_under(path: Path) -> list[str]:
    """Mounts under `path` in any mount namespace still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            lines = (entry / "mountinfo").read_text().splitlines()
        except OSError:
            continue
        found += [line for line in lines if f" {path}/" in line]
    return found


def assert_nothing_left(workdir: Path, tag: str) -> None:
    assert list(workdir.iterdir()) == [], "the work directory is not empty"
    assert processes_mentioning(workdir) == []
    assert mounts_under(workdir) == []
    assert podman("image", "exists", tag).returncode != 0, "an image was tagged"


def fails(iso: Path, workdir: Path, tag: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = nestcustom("base", "from-iso", str(iso), "--workdir", str(workdir), "--tag", tag, *args)
    assert "Traceback" not in done.stderr
    assert_nothing_left(workdir, tag)
    return done


def test_an_image_without_repositories(iso_norepo: Path, workdir: Path, tag: str) -> None:
    done = fails(iso_norepo, workdir, tag)
    assert done.returncode == 2
    assert "holds no package repository" in done.stderr


def test_a_truncated_dvd(iso_treeinfo: Iso, workdir: Path, tag: str, tmp_path: Path) -> None:
    cut = tmp_path / "cut.iso"
    with iso_treeinfo.path.open("rb") as source, cut.open("wb") as target:
        target.write(source.read(iso_treeinfo.path.stat().st_size // 2))
    done = fails(cut, workdir, tag)
    assert done.returncode == 2
    assert "is truncated" in done.stderr


def test_a_package_set_that_does_not_resolve(iso_treeinfo: Iso, workdir: Path, tag: str) -> None:
    done = fails(iso_treeinfo.path, workdir, tag, "--packages", "bash,no-such-package")
    assert done.returncode == 2
    assert "not on the ISO: no-such-package" in done.stderr
    assert "nothing was written" in done.stderr


def test_an_unsigned_package(iso_unsigned: Iso, workdir: Path, tag: str) -> None:
    done = fails(iso_unsigned.path, workdir, tag, "--packages", "bash,nc-owned")
    assert done.returncode == 2
    assert "fail the signature check" in done.stderr
    assert "nc-owned-1.0-1.ns6.noarch.rpm" in done.stderr


def test_a_hostile_rpm_in_the_bootstrap(iso_hostile: Iso, workdir: Path, tag: str) -> None:
    """The ISO's rpm says every package verifies and is signed by an outsider: the host's
    rpm refuses it before any of it runs, even when the image itself does not take rpm."""
    done = fails(iso_hostile.path, workdir, tag, "--packages", "bash,coreutils")
    assert done.returncode == 2, done.stderr
    assert "of the ISO's rpm (the bootstrap, checked by the host's rpm" in done.stderr
    assert f"{iso_hostile.packages['rpm']}.rpm: digests SIGNATURES NOT OK" in done.stderr
    assert "\nverify " not in done.stderr and "\ninstall " not in done.stderr  # nothing ran


def test_a_corrupted_package(iso_corrupt: Iso, workdir: Path, tag: str) -> None:
    done = fails(iso_corrupt.path, workdir, tag, "--packages", "bash,nc-owned")
    assert done.returncode == 2
    assert "damaged (checksum mismatch)" in done.stderr
    assert "nc-owned-1.0-1.ns6.noarch.rpm" in done.stderr


def test_a_full_disk(iso_treeinfo: Iso, tmp_path: Path, tag: str) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(small)], check=False
    )
    assert mounted.returncode == 0
    try:
        done = fails(iso_treeinfo.path, small, tag, "--packages", SMALL)
        assert done.returncode == 1, done.stderr
        assert "space" in done.stderr and "--workdir" in done.stderr, done.stderr
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.parametrize(
    ("phase", "signum"),
    [
        ("resolve", signal.SIGINT),
        ("extract", signal.SIGTERM),
        ("bootstrap", signal.SIGINT),
        ("verify", signal.SIGTERM),
        ("install", signal.SIGINT),
        ("tar", signal.SIGTERM),
        ("image", signal.SIGINT),
    ],
)
def test_interrupted_in_each_phase(
    iso_treeinfo: Iso, workdir: Path, tag: str, phase: str, signum: signal.Signals
) -> None:
    command = [
        sys.executable, "-m", "nestcustom", "base", "from-iso", str(iso_treeinfo.path),
        "--packages", SMALL, "--workdir", str(workdir), "--tag", tag, "--json",
    ]  # fmt: skip
    # Ctrl-C reaches the terminal's whole process group; SIGTERM only the process.
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "NESTCUSTOM_CACHE_DIR": str(BASE_CACHE)},
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(phase):
            if signum == signal.SIGINT:
                os.killpg(proc.pid, signal.SIGINT)
            else:
                proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    code = proc.wait(timeout=120)
    text = "".join(seen) + rest
    assert code == (130 if signum == signal.SIGINT else 143), text
    assert "no image was tagged" in rest
    assert proc.stdout is not None
    document = json.loads(proc.stdout.read())  # --json: one document, also when stopped
    assert document["exit_code"] == code and document["ok"] is False
    assert document["error"]["signal"] == signum.name
    assert "no image was tagged" in document["error"]["state"]
    assert "Traceback" not in text
    assert_nothing_left(workdir, tag)


def stage_dirs() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("nestcustom-base-stage-*")}


def test_interrupted_while_staged_in_memory(iso_treeinfo: Iso, tag: str, tmp_path: Path) -> None:
    """Without --workdir the root is built in /dev/shm (when it fits): that goes too."""
    before = stage_dirs()
    env = {**os.environ, "TMPDIR": str(tmp_path), "NESTCUSTOM_CACHE_DIR": str(BASE_CACHE)}
    command = [
        sys.executable, "-m", "nestcustom", "base", "from-iso", str(iso_treeinfo.path),
        "--packages", SMALL, "--tag", tag,
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("install"):
            assert stage_dirs() - before, "the build is not staged in memory"
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, rest
    assert stage_dirs() - before == set()
    assert_nothing_left(tmp_path, tag)
