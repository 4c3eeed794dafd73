"""The fixture NestOS images against shared/contracts/nestos-rpm-ostree.md, sections 0 and 1.

Every case runs the way a user hits it: ``podman run --rm`` of the fixture
image (podman sets ``container=podman`` and mounts /run/.containerenv) or
``podman build`` of a small Containerfile ``FROM`` it. The RPMs come from the
test universe repository (tests/universe/rpmrepo.py), served on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ..rpmrepo import RpmRepo
from .build import VARIANTS, image_ref, machine_arch
from .fixtures_base import EXTRA_MOUNT, RPMS_MOUNT, NestosImage

# The fixtures (rpm_repo, nestos_sp2, ...) come from tests/universe/conftest.py.

pytestmark = pytest.mark.universe

NOT_BOOTED = [
    "error: This system was not booted via libostree; found container=podman environment variable.",
    "Currently, most rpm-ostree commands only work on ostree-based host systems.",
]
NOT_IN_CONTAINER = "error: Not in an ostree-based container environment"
FOUND_CONTENT = "error: Found content in var"


def rpm_file(repo: RpmRepo, name: str) -> str:
    return f"{repo.packages[name]}.rpm"


def extra_hello(repo: RpmRepo) -> str:
    matches = sorted(p.name for p in repo.extra_path.glob("nc-hello-2.0-*.rpm"))
    assert matches, f"no nc-hello 2.0 in {repo.extra_path}"
    return matches[0]


@pytest.fixture(params=["sp2", "sp1"])
def any_nestos(request: pytest.FixtureRequest) -> NestosImage:
    image: NestosImage = request.getfixturevalue(f"nestos_{request.param}")
    return image


# ------------------------------------------------------------ section 0


def test_image_reference_names_stream_and_arch(nestos_sp2: NestosImage) -> None:
    assert nestos_sp2.ref == image_ref("sp2")
    assert nestos_sp2.ref.startswith("localhost/nestcustom-test/")
    assert nestos_sp2.ref.endswith(f"/nestos:22.03-LTS-SP2.20230922.0-{machine_arch()}")


@pytest.mark.parametrize("variant", ["sp2", "sp1"])
def test_image_labels(variant: str, request: pytest.FixtureRequest) -> None:
    image: NestosImage = request.getfixturevalue(f"nestos_{variant}")
    proc = subprocess.run(
        ["podman", "image", "inspect", image.ref], capture_output=True, text=True, check=True
    )
    labels = json.loads(proc.stdout)[0]["Labels"]
    assert labels["ostree.bootable"] == "true"
    assert labels["version"] == VARIANTS[variant].version


def test_os_release_and_base_packages(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        '. /etc/os-release && echo "$NAME|$ID|$VERSION_ID" '
        "&& rpm --eval %_dbpath && rpm -qa --qf '%{NAME}\\n' | sort "
        "&& grep -h '^enabled' /etc/yum.repos.d/openEuler.repo | sort -u "
        "&& grep -A3 '^\\[core\\]' /sysroot/ostree/repo/config",
        with_repo=False,
    )
    assert r.returncode == 0, r.output
    lines = r.stdout_lines
    assert lines[0] == "NestOS|nestos|22.03-LTS-SP2"
    assert lines[1] == "/usr/share/rpm"
    for name in (
        "toolbox",
        "zincati",
        "nestos-release",
        "openEuler-repos",
        "podman",
        "skopeo",
        "kernel",
        "rpm-ostree",
    ):
        assert name in lines
    assert "enabled=0" in lines and "enabled=1" not in lines
    assert "mode=bare-split-xattrs" in lines


def test_no_dnf_yum_python_perl(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "for c in dnf yum python3 perl bootc; do command -v $c; done; dnf install -y strace",
        with_repo=False,
    )
    assert r.returncode == 127
    assert r.stdout == ""
    assert "dnf: not found" in r.stderr


def test_dnf_in_a_run_step_is_command_not_found(nestos_sp2: NestosImage) -> None:
    r, _ = nestos_sp2.build("RUN dnf install -y strace")
    assert r.returncode != 0
    assert "dnf: not found" in r.output
    assert "exit status 127" in r.output


def test_base_image_var_holds_directories_only(any_nestos: NestosImage) -> None:
    r = any_nestos.run("find /var ! -type d", with_repo=False)
    assert r.returncode == 0 and r.stdout == "", r.output


@pytest.mark.parametrize(("variant", "version"), [("sp2", "2022.16"), ("sp1", "2022.8")])
def test_rpm_ostree_version(variant: str, version: str, request: pytest.FixtureRequest) -> None:
    image: NestosImage = request.getfixturevalue(f"nestos_{variant}")
    r = image.run("rpm-ostree --version", with_repo=False)
    assert r.returncode == 0
    assert r.stdout_lines[:2] == ["rpm-ostree:", f" Version: '{version}'"]


# ------------------------------------------------ host-only sub-commands


@pytest.mark.parametrize(
    "command",
    [
        "status",
        "status --json",
        "upgrade",
        "rebase ostree-unverified-registry:127.0.0.1:5000/x/y:latest",
        "kargs --append=quiet",
        "initramfs --enable",
        "rollback",
        "deploy 22.03",
        "override reset toolbox",
        "cleanup -b",
        "cleanup -p",
    ],
)
def test_host_only_subcommands_fail(any_nestos: NestosImage, command: str) -> None:
    r = any_nestos.run(f"rpm-ostree {command}", with_repo=False)
    assert r.returncode == 1
    assert r.stderr_lines == NOT_BOOTED


def test_host_only_subcommand_in_a_build_step(nestos_sp2: NestosImage) -> None:
    # podman build sets no $container (only /run/.containerenv), so no value is named.
    r, _ = nestos_sp2.build("RUN rpm-ostree status")
    assert r.returncode != 0
    assert "error: This system was not booted via libostree" in r.output
    assert NOT_BOOTED[1] in r.output
    assert "exit status 1" in r.output


# ------------------------------------------------------------ install


def test_install_pulls_dependencies(nestos_sp2: NestosImage, rpm_repo: RpmRepo) -> None:
    r = nestos_sp2.run("rpm-ostree install nc-hello && rpm -q nc-hello nc-libgreet && nc-hello")
    assert r.returncode == 0, r.output
    lines = r.stdout_lines
    i = lines.index("Installing 2 packages:")
    assert lines[i + 1 : i + 3] == [
        f"  {rpm_repo.packages['nc-hello']} (nctest)",
        f"  {rpm_repo.packages['nc-libgreet']} (nctest)",
    ]
    assert "hello from nc-hello 1.0" in lines


def test_install_real_program(nestos_sp2: NestosImage, rpm_repo: RpmRepo) -> None:
    r = nestos_sp2.run("rpm-ostree install strace && strace -V")
    assert r.returncode == 0, r.output
    assert "Installing 2 packages:" in r.stdout_lines
    assert f"  {rpm_repo.packages['libunwind8']} (nctest)" in r.stdout_lines
    assert any(line.startswith("strace -- version") for line in r.stdout_lines)


def test_install_runs_scriptlets(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree install nc-scriptlet && ls /usr/share/nc-scriptlet/post-ran")
    assert r.returncode == 0, r.output


def test_install_sysuser_becomes_sysusers_fragment(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "rpm-ostree install nc-sysuser >/dev/null && "
        "cat /usr/lib/sysusers.d/35-rpmostree-pkg-user-ncsvc.conf"
    )
    assert r.returncode == 0, r.output
    assert r.stdout.startswith("u ncsvc ")


def test_install_of_installed_package_is_empty(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree install toolbox")
    assert r.returncode == 0, r.output
    assert "Empty transaction" in r.stdout_lines


def test_install_unknown_packages(any_nestos: NestosImage) -> None:
    r = any_nestos.run("rpm-ostree install nc-nope nc-hello nc-nada")
    assert r.returncode == 1
    assert r.stderr_lines == ["error: Packages not found: nc-nope, nc-nada"]
    assert "Installing" not in r.stdout


def test_install_needs_a_package(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree install")
    assert r.returncode == 1
    assert r.stderr_lines[-1].startswith("error: ")


def test_install_local_rpm_sp2(nestos_sp2: NestosImage, rpm_repo: RpmRepo) -> None:
    hello2 = extra_hello(rpm_repo)
    r = nestos_sp2.run(f"cd {EXTRA_MOUNT} && rpm-ostree install ./{hello2} && nc-hello")
    assert r.returncode == 0, r.output
    lines = r.stdout_lines
    i = lines.index("Installing 2 packages:")
    assert lines[i + 1 : i + 3] == [
        f"  {hello2.removesuffix('.rpm')} (commandline)",
        f"  {rpm_repo.packages['nc-libgreet']} (nctest)",
    ]
    assert "hello from nc-hello 2.0" in lines


def test_install_rpm_urls_sp2(
    nestos_sp2: NestosImage, rpm_repo: RpmRepo, rpm_repo_url: str
) -> None:
    libgreet = rpm_file(rpm_repo, "nc-libgreet")
    hello2 = extra_hello(rpm_repo)
    r = nestos_sp2.run(
        f"rpm-ostree install file://{RPMS_MOUNT}/{libgreet} {rpm_repo_url}extra/{hello2}"
        " && nc-hello"
    )
    assert r.returncode == 0, r.output
    assert f"  {rpm_repo.packages['nc-libgreet']} (commandline)" in r.stdout_lines
    assert f"  {hello2.removesuffix('.rpm')} (commandline)" in r.stdout_lines
    assert "hello from nc-hello 2.0" in r.stdout_lines


def test_install_local_rpm_refused_sp1(
    nestos_sp1: NestosImage, rpm_repo: RpmRepo, rpm_repo_url: str
) -> None:
    libgreet = rpm_file(rpm_repo, "nc-libgreet")
    r = nestos_sp1.run(f"cd {RPMS_MOUNT} && rpm-ostree install ./{libgreet}")
    assert r.returncode == 1
    assert r.stderr_lines == [f"error: Packages not found: ./{libgreet}"]
    r = nestos_sp1.run(f"rpm-ostree install nc-hello {rpm_repo_url}{libgreet}")
    assert r.returncode == 1
    assert r.stderr_lines == [f"error: Packages not found: {rpm_repo_url}{libgreet}"]


def test_install_source_rpm_refused(nestos_sp2: NestosImage, source_rpm: Path) -> None:
    r = nestos_sp2.run(
        f"rpm-ostree install /srpm/{source_rpm.name}", volumes={source_rpm.parent: "/srpm"}
    )
    assert r.returncode == 1
    assert len(r.stderr_lines) == 1
    assert r.stderr_lines[0].startswith("error: ")
    assert "source RPM" in r.stderr_lines[0]
    check = nestos_sp2.run("rpm -q nc-srcpkg")
    assert check.returncode != 0


def test_search(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree search nc-hel")
    assert r.returncode == 0, r.output
    assert any(line.startswith("nc-hello") for line in r.stdout_lines)


# ----------------------------------------------------- override / uninstall


def test_override_remove_base_package(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "rpm-ostree override remove toolbox && ! rpm -q toolbox && ! test -e /usr/bin/toolbox"
    )
    assert r.returncode == 0, r.output


def test_override_remove_missing_package(any_nestos: NestosImage) -> None:
    r = any_nestos.run("rpm-ostree override remove nc-missing")
    assert r.returncode == 1
    assert r.stderr_lines == ['error: Package "nc-missing" not found']


def test_override_remove_needed_package_is_a_depsolve_error(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "rpm-ostree install nc-hello >/dev/null && rpm-ostree override remove nc-libgreet"
    )
    assert r.returncode == 1
    assert r.stderr_lines[0].startswith("error: Could not depsolve transaction")
    assert "nc-libgreet" in r.stderr


def test_uninstall_is_override_remove(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree uninstall zincati && ! rpm -q zincati")
    assert r.returncode == 0, r.output
    r = nestos_sp2.run("rpm-ostree uninstall nc-missing")
    assert r.returncode == 1
    assert r.stderr_lines == ['error: Package "nc-missing" not found']


def test_override_remove_install_dropped_on_2022_16(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "rpm-ostree override remove toolbox --install nc-hello && ! rpm -q toolbox "
        "&& ! rpm -q nc-hello"
    )
    assert r.returncode == 0, r.output


def test_override_replace_bare_name(any_nestos: NestosImage) -> None:
    r = any_nestos.run("rpm-ostree override replace toolbox")
    assert r.returncode == 1
    assert r.stderr_lines == ["error: Non-local replacement overrides not implemented yet"]


def test_override_replace_other_name(nestos_sp2: NestosImage, rpm_repo: RpmRepo) -> None:
    r = nestos_sp2.run(f"rpm-ostree override replace {RPMS_MOUNT}/{rpm_file(rpm_repo, 'nc-hello')}")
    assert r.returncode == 1
    assert r.stderr_lines == ["error: Package nc-hello doesn't replace a package of the same name"]


def test_override_replace_same_name_via_url(
    nestos_sp2: NestosImage, rpm_repo: RpmRepo, rpm_repo_url: str
) -> None:
    hello2 = extra_hello(rpm_repo)
    r = nestos_sp2.run(
        "rpm-ostree install nc-hello >/dev/null "
        f"&& rpm-ostree override replace {rpm_repo_url}extra/{hello2} && nc-hello"
    )
    assert r.returncode == 0, r.output
    assert "hello from nc-hello 2.0" in r.stdout_lines


# --------------------------------------------------------------- cleanup


def test_cleanup_m_empties_rpm_ostree_cache(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        'rpm-ostree install nc-libgreet >/dev/null && test -n "$(ls -A /var/cache/rpm-ostree)" '
        "&& rpm-ostree cleanup -m && find /var/cache/rpm-ostree -mindepth 1"
    )
    assert r.returncode == 0, r.output
    assert r.stdout == ""


# ------------------------------------------------- ostree container commit


def test_commit_without_ostree_repo_config(any_nestos: NestosImage) -> None:
    r = any_nestos.run("rm /sysroot/ostree/repo/config && ostree container commit")
    assert r.returncode == 1
    assert r.stderr_lines == [NOT_IN_CONTAINER]


def test_commit_without_container_markers(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "umount /run/.containerenv && rm -f /run/.containerenv "
        "&& env -u container ostree container commit",
        privileged=True,
    )
    assert r.returncode == 1
    assert r.stderr_lines == [NOT_IN_CONTAINER]


def test_commit_cleans_and_keeps_mounts(any_nestos: NestosImage) -> None:
    r = any_nestos.run(
        "mkdir -p /var/cache/x/y /var/lib/emptydir/sub /run/foo /tmp/t /var/tmp/vt "
        "&& touch /var/cache/x/y/f /run/foo/f /tmp/t/f /tmp/f /var/tmp/vt/f "
        "&& ostree container commit "
        "&& ls -A /tmp && test -e /run/.containerenv && test -s /etc/hosts "
        "&& ! test -e /run/foo && ! test -e /var/tmp/vt && ! test -e /var/cache/x "
        "&& ! test -e /var/lib/emptydir"
    )
    assert r.returncode == 0, r.output
    assert r.stderr == ""
    assert r.stdout == ""  # /tmp emptied


def test_commit_var_content_fails_on_sp2(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree install nc-varwriter >/dev/null 2>&1 && ostree container commit")
    assert r.returncode == 1
    assert r.stderr_lines == ['Found file: "var/lib/nc-varwriter/state"', FOUND_CONTENT]


def test_commit_var_content_passes_on_sp1(nestos_sp1: NestosImage) -> None:
    r = nestos_sp1.run("rpm-ostree install nc-varwriter >/dev/null 2>&1 && ostree container commit")
    assert r.returncode == 0
    assert r.stderr_lines == ['Found file: "var/lib/nc-varwriter/state"']


@pytest.mark.parametrize(("variant", "code"), [("sp2", 1), ("sp1", 0)])
def test_commit_reports_first_19_files(
    variant: str, code: int, request: pytest.FixtureRequest
) -> None:
    image: NestosImage = request.getfixturevalue(f"nestos_{variant}")
    r = image.run(
        "mkdir -p /var/lib/many && i=0 && while [ $i -lt 25 ]; do "
        "touch /var/lib/many/f$i; i=$((i + 1)); done && ostree container commit"
    )
    assert r.returncode == code
    found = [line for line in r.stderr_lines if line.startswith("Found file: ")]
    assert len(found) == 19
    assert all(line.startswith('Found file: "var/lib/many/f') for line in found)
    assert (FOUND_CONTENT in r.stderr_lines) == (code == 1)


# ------------------------------------------------------- podman build


def test_documented_layer_builds(nestos_sp2: NestosImage) -> None:
    r, tag = nestos_sp2.build(
        "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
        "RUN rpm-ostree install strace nc-hello && rm -rf /var/cache && ostree container commit"
    )
    assert r.returncode == 0, r.output
    run = subprocess.run(
        ["podman", "run", "--rm", tag, "sh", "-c", "nc-hello && strace -V && find /var ! -type d"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "hello from nc-hello 1.0"
    assert "/var" not in run.stdout
    inspect = subprocess.run(
        ["podman", "image", "inspect", tag], capture_output=True, text=True, check=True
    )
    labels = json.loads(inspect.stdout)[0]["Labels"]
    assert labels["version"] == VARIANTS["sp2"].version
    assert labels["ostree.bootable"] == "true"


def test_build_with_var_content_fails_on_sp2(nestos_sp2: NestosImage) -> None:
    r, _ = nestos_sp2.build(
        "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
        "RUN rpm-ostree install nc-varwriter && ostree container commit"
    )
    assert r.returncode != 0
    assert 'Found file: "var/lib/nc-varwriter/state"' in r.output
    assert FOUND_CONTENT in r.output
    assert "exit status 1" in r.output


def test_build_with_var_content_passes_on_sp1(nestos_sp1: NestosImage) -> None:
    r, _ = nestos_sp1.build(
        "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
        "RUN rpm-ostree install nc-varwriter && ostree container commit"
    )
    assert r.returncode == 0, r.output
    assert 'Found file: "var/lib/nc-varwriter/state"' in r.output


def test_other_ostree_commands_reach_the_real_binary(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "ostree --version && ostree init --repo=/tmp/r --mode=bare-user && ostree refs --repo=/tmp/r",
        with_repo=False,
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines[0] == "libostree:"


def test_unreachable_enabled_repo_fails_install(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "printf '[dead]\\nbaseurl=http://127.0.0.1:9/\\nenabled=1\\n' > /etc/yum.repos.d/dead.repo"
        " && rpm-ostree install nc-hello"
    )
    assert r.returncode == 1
    assert r.stderr_lines[-1].startswith("error: Updating rpm-md repo 'dead'")
