"""What a failed install says: the namespace's result turned into the user's error."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from nestcustom.base import install
from nestcustom.base.resolve import Package, Plan
from nestcustom.base.variants import STANDARD
from nestcustom.errors import BadInputError, NestcustomError


def _plan(count: int) -> Plan:
    packages = tuple(
        Package(
            f"p{n}",
            0,
            "1",
            "1",
            "x86_64",
            "BaseOS",
            f"p{n}.rpm",
            f"BaseOS/p{n}.rpm",
            "sha256",
            "00",
            10,
            10,
        )
        for n in range(count)
    )
    return Plan(packages, ())


def test_a_failing_scriptlet_shows_rpms_last_lines_not_a_space_problem() -> None:
    output = "\n".join(f"line {n}" for n in range(20)) + "\nerror: %post(bash) scriptlet failed\n"
    error = install._failure({"ok": False, "kind": "install", "output": output}, _plan(3))
    assert not isinstance(error, BadInputError)
    assert error.message.startswith("rpm failed installing the image root (3 packages):\n")
    assert error.message.endswith("line 19\nerror: %post(bash) scriptlet failed")
    assert "line 12" not in error.message  # only the last eight lines
    assert "space" not in error.message


def test_a_namespace_failure_is_not_called_an_rpm_failure() -> None:
    error = install._failure({"ok": False, "kind": "namespace", "output": "mount: EPERM"}, _plan(1))
    assert error.message == "the install namespace failed (1 packages):\nmount: EPERM"


@pytest.mark.parametrize(
    "output",
    [
        "error: unpacking of archive failed on file /usr/lib64/libc.so.6: cpio: write: No space left on device",
        "installing package glibc needs 12MB more space on the / filesystem",
    ],
)
def test_a_full_disk_says_no_space_and_where(output: str) -> None:
    error = install._failure({"ok": False, "kind": "install", "output": output}, _plan(2))
    assert error.message == "installing failed: no space left in the work directory"
    assert "--workdir" in str(error.hint)


def test_signature_failures_are_bad_input_listing_ten() -> None:
    problems = [f"p{n}.rpm: digests SIGNATURES NOT OK" for n in range(12)]
    error = install._failure({"ok": False, "kind": "signature", "problems": problems}, _plan(12))
    assert isinstance(error, BadInputError)
    assert error.message.startswith("12 package(s) on the ISO fail the signature check")
    assert "p9.rpm" in error.message and "p10.rpm" not in error.message
    assert error.message.endswith("... 2 more")


def test_without_unshare_the_install_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(NestcustomError) as caught:
        install.install_root(
            work=tmp_path,
            boot=tmp_path / "boot",
            boot_lower=None,
            root=tmp_path / "root",
            iso_dir=tmp_path / "iso",
            plan=_plan(1),
            keys=[],
            variant=STANDARD,
            gpgcheck=True,
            source_date_epoch=0,
            on_line=lambda _: None,
        )
    assert caught.value.message == "unshare is not installed"
    assert "apt-get install util-linux" in str(caught.value.hint)
    assert not (tmp_path / "root").exists()  # refused before anything was written


def test_progress_lines_are_handed_on_whole_and_the_last_ones_after_the_stop(
    tmp_path: Path,
) -> None:
    """The namespace writes its progress file as it goes: a line caught half-written is
    handed on once it is whole, and what was written just before the stop still arrives."""
    progress = tmp_path / "progress"
    progress.write_text("install 1/3 bash\ninstall 2/3 co")
    stop = threading.Event()
    seen: list[str] = []
    follower = threading.Thread(target=install._follow, args=(progress, stop, seen.append))
    follower.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    with progress.open("a") as handle:
        handle.write("reutils\ninstall 3/3 rpm\n")
    stop.set()
    follower.join(timeout=10)
    assert seen == ["install 1/3 bash", "install 2/3 coreutils", "install 3/3 rpm"]
