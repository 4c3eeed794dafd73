"""The build helper's `files --set`, run by a real POSIX sh on real files: what an
edit does to the image's configuration files."""

from __future__ import annotations

import os
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from tests.universe.helper_root import HelperRoot

HELPER = str(resources.files("nestcustom.containerfile") / "build-helper.sh")


def edit(path: Path, section: str, key: str, value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", HELPER, "files", "--set", str(path), section, key, value],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_key_is_replaced_in_its_section_only(tmp_path: Path) -> None:
    conf = tmp_path / "dnf.conf"
    conf.write_text(
        "[main]\ngpgcheck=1\n  install_weak_deps = True\n\n[other]\ninstall_weak_deps=1\n"
    )
    conf.chmod(0o640)
    assert edit(conf, "main", "install_weak_deps", "False").returncode == 0
    assert conf.read_text() == (
        "[main]\ngpgcheck=1\ninstall_weak_deps=False\n\n[other]\ninstall_weak_deps=1\n"
    )
    assert conf.stat().st_mode & 0o777 == 0o640  # rewritten in place


def test_a_missing_key_joins_its_section_and_a_missing_section_is_made(tmp_path: Path) -> None:
    conf = tmp_path / "a.ini"
    conf.write_text("[one]\na=1\n[two]\nb=2\n")
    assert edit(conf, "one", "c", "3").returncode == 0
    assert edit(conf, "three", "d", "4").returncode == 0
    assert conf.read_text() == "[one]\na=1\nc=3\n[two]\nb=2\n\n[three]\nd=4\n"


def test_a_key_in_an_earlier_section_is_not_the_one_replaced(tmp_path: Path) -> None:
    conf = tmp_path / "a.ini"
    conf.write_text("[other]\nk=1\n[main]\nk=2\n")
    assert edit(conf, "main", "k", "9").returncode == 0
    assert conf.read_text() == "[other]\nk=1\n[main]\nk=9\n"


def test_a_key_of_no_section_goes_before_the_first_section(tmp_path: Path) -> None:
    conf = tmp_path / "a.ini"
    conf.write_text("# top\nk=1\n[s]\nx=2\n")
    assert edit(conf, "-", "x", "3").returncode == 0  # x of [s] is another key
    assert edit(conf, "-", "k", "4").returncode == 0
    assert conf.read_text() == "# top\nk=4\nx=3\n[s]\nx=2\n"


def test_an_edit_leaves_nothing_in_tmp(box: HelperRoot) -> None:
    box.write("/etc/a.conf", "[s]\nk=1\n")
    done = box.helper("files", "--set", "/etc/a.conf", "s", "k", "2")
    assert (done.returncode, done.stderr) == (0, "")
    assert box.path("/etc/a.conf").read_text() == "[s]\nk=2\n"
    assert box.left_in_tmp() == []


def test_os_release_through_its_symlink_with_the_quotes_given(tmp_path: Path) -> None:
    real = tmp_path / "usr-lib-os-release"
    real.write_text('NAME="NestOS"\nVERSION_ID=22.03\n')
    link = tmp_path / "os-release"
    link.symlink_to(real.name)
    assert edit(link, "-", "VARIANT", '"Example Corp"').returncode == 0
    assert edit(link, "-", "VERSION_ID", "22.03-site").returncode == 0
    assert link.is_symlink()  # the link stays a link; its target is edited
    assert real.read_text() == 'NAME="NestOS"\nVERSION_ID=22.03-site\nVARIANT="Example Corp"\n'


@pytest.mark.parametrize("value", ["$(touch x)", "a;b", "`id`", "\\n"])
def test_values_are_data(tmp_path: Path, value: str) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("k=1\n")
    assert edit(conf, "-", "k", value).returncode == 0
    assert conf.read_text() == f"k={value}\n"
    assert not (Path(os.getcwd()) / "x").exists()


def test_a_file_the_image_lacks_fails_with_its_name(tmp_path: Path) -> None:
    done = edit(tmp_path / "nope.conf", "-", "k", "v")
    assert done.returncode == 1
    assert (
        done.stderr == f"nestcustom: edits: {tmp_path / 'nope.conf'} does not exist in the image\n"
    )
