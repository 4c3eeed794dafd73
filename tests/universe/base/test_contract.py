"""The fixture NestOS images against docs/contracts/nestos-rpm-ostree.md, sections 0 and 1.

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
from .fixtures_base import EXTRA_MOUNT, RPMS_MOUNT, NestosImage, Result

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
    # nc-sysuser's %pre: useradd -r -M -d / -s /usr/sbin/nologin -c "nestcustom test service"
    r = nestos_sp2.run(
        "rpm-ostree install nc-sysuser >/dev/null && "
        "cat /usr/lib/sysusers.d/35-rpmostree-pkg-user-ncsvc.conf && getent passwd ncsvc"
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines[:2] == [
        "# Generated by rpm-ostree",
        'u ncsvc - "nestcustom test service" - -',
    ]
    assert r.stdout_lines[2].startswith("ncsvc:x:")  # the real useradd ran too


def test_install_sysuser_writes_no_fragment_on_sp1(nestos_sp1: NestosImage) -> None:
    r = nestos_sp1.run(
        "rpm-ostree install nc-sysuser >/dev/null && getent passwd ncsvc "
        "&& ls /usr/lib/sysusers.d/ | grep -c rpmostree"
    )
    assert r.returncode == 1, r.output  # grep -c found none
    assert r.stdout_lines[0].startswith("ncsvc:x:")  # the real useradd ran
    assert r.stdout_lines[1:] == ["0"]


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
    arg = f"/srpm/{source_rpm.name}"
    r = nestos_sp2.run(f"rpm-ostree install {arg}", volumes={source_rpm.parent: "/srpm"})
    assert r.returncode == 1
    assert r.stderr_lines == [
        f"error: Handling argument {arg}: {arg} appears to be a source RPM "
        "which are not usually intended to be installed"
    ]
    check = nestos_sp2.run("rpm -q nc-srcpkg")
    assert check.returncode != 0


def test_install_missing_local_rpm(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree install nc-hello ./nc-nothere-1.0-1.noarch.rpm")
    assert r.returncode == 1
    assert r.stderr_lines == [
        "error: Handling argument ./nc-nothere-1.0-1.noarch.rpm: "
        "No such file or directory (os error 2)"
    ]


def test_search_is_unknown(any_nestos: NestosImage) -> None:
    # `search` came with 2023.6; neither 2022.8 nor 2022.16 has it.
    r = any_nestos.run("rpm-ostree search nc-hel")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr_lines == ["error: Unknown command 'search'"]


# ----------------------------------------------------- override / uninstall


def test_override_remove_base_package(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "rpm-ostree override remove toolbox && ! rpm -q toolbox && ! test -e /usr/bin/toolbox"
    )
    assert r.returncode == 0, r.output


def test_override_remove_missing_package(any_nestos: NestosImage) -> None:
    r = any_nestos.run("rpm-ostree override remove nc-missing")
    assert r.returncode == 1
    assert r.stderr_lines == ["error: No installed package matches 'nc-missing'"]


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
    assert r.stderr_lines == ["error: No installed package matches 'nc-missing'"]


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


def test_override_replace_other_name_is_installed(
    nestos_sp2: NestosImage, rpm_repo: RpmRepo
) -> None:
    # An RPM whose name is not in the base is simply installed (its dependencies too).
    r = nestos_sp2.run(
        f"rpm-ostree override replace {RPMS_MOUNT}/{rpm_file(rpm_repo, 'nc-hello')} && nc-hello"
    )
    assert r.returncode == 0, r.output
    assert "hello from nc-hello 1.0" in r.stdout_lines


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


@pytest.mark.parametrize(
    "evidence", ["INVOCATION_ID=unit-1 ", "touch /run/ostree-booted && "], ids=["unit", "booted"]
)
def test_commit_without_container_markers(nestos_sp2: NestosImage, evidence: str) -> None:
    # No marker plus evidence of a systemd unit or a booted ostree host: not a container build.
    r = nestos_sp2.run(
        "umount /run/.containerenv && rm -f /run/.containerenv "
        f"&& {evidence}env -u container ostree container commit "
        f"; {evidence}env -u container rpm-ostree install nc-hello",
        privileged=True,
    )
    assert r.returncode == 1
    assert r.stderr_lines == [
        NOT_IN_CONTAINER,
        "error: This system was not booted via libostree.",
        NOT_BOOTED[1],
    ]


def test_no_marker_and_no_host_evidence_is_a_container_build(nestos_sp2: NestosImage) -> None:
    # ostree-rs-ext 0.9.1: with the container-format repo, a process outside any systemd
    # unit on a host not booted via ostree is taken for a container build.
    r = nestos_sp2.run(
        "umount /run/.containerenv && rm -f /run/.containerenv "
        "&& env -u container -u INVOCATION_ID sh -c "
        "'rpm-ostree install nc-libgreet >/dev/null && rm -rf /var/cache/* "
        "&& ostree container commit'",
        privileged=True,
    )
    assert r.returncode == 0, r.output
    assert r.stderr == ""


def test_dockerenv_marks_a_container_build(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "umount /run/.containerenv && rm -f /run/.containerenv && touch /.dockerenv "
        "&& INVOCATION_ID=unit-1 env -u container ostree container commit",
        privileged=True,
    )
    assert r.returncode == 0, r.output


def test_commit_cleans_and_keeps_mounts(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
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


def test_commit_removes_empty_var(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("ostree container commit && ! test -e /var", with_repo=False)
    assert r.returncode == 0, r.output
    assert r.output == ""


def test_commit_mount_under_var_fails_validating(any_nestos: NestosImage) -> None:
    # 0.9.1 skips the mount, then cannot remove its parent; 0.7.1 only lists files.
    r = any_nestos.run(
        "mkdir -p /var/cache/m && mount -t tmpfs tmpfs /var/cache/m && touch /var/cache/m/f "
        "&& ostree container commit",
        privileged=True,
        with_repo=False,
    )
    if "SP1" in any_nestos.ref:
        assert r.returncode == 0, r.output
        assert r.stdout_lines == ["Checking /var for files"]
        assert r.stderr == ""
    else:
        assert r.returncode == 1
        assert r.stderr_lines == ["error: Validating: var/cache: Directory not empty (os error 39)"]


def test_commit_var_content_fails_on_sp2(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree install nc-varwriter >/dev/null 2>&1 && ostree container commit")
    assert r.returncode == 1
    assert r.stderr_lines == ['Found file: "var/lib/nc-varwriter/state"', FOUND_CONTENT]


def test_commit_cleans_nothing_on_sp1(nestos_sp1: NestosImage) -> None:
    # 0.7.1 only looks at /var: it removes nothing anywhere, reports every file, exits 0.
    r = nestos_sp1.run(
        "mkdir -p /var/cache/x /var/lib/emptydir /run/foo /var/tmp/vt "
        "&& touch /var/cache/x/f /run/foo/f /tmp/f /var/tmp/vt/f "
        "&& ostree container commit "
        "&& test -e /var/cache/x/f && test -e /run/foo/f && test -e /tmp/f "
        "&& test -e /var/tmp/vt/f && test -d /var/lib/emptydir"
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines == ["Checking /var for files"]
    assert r.stderr_lines == ['Found file: "/var/cache/x/f"', 'Found file: "/var/tmp/vt/f"']


def test_commit_on_sp1_with_empty_var(nestos_sp1: NestosImage) -> None:
    r = nestos_sp1.run("ostree container commit", with_repo=False)
    assert r.returncode == 0, r.output
    assert r.stdout_lines == ["Checking /var for files"]
    assert r.stderr == ""


def test_commit_var_content_passes_on_sp1(nestos_sp1: NestosImage) -> None:
    r = nestos_sp1.run(
        "rpm-ostree install nc-varwriter >/dev/null 2>&1 && rpm-ostree cleanup -m "
        "&& ostree container commit && cat /var/lib/nc-varwriter/state"
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines == ["Checking /var for files", "state of nc-varwriter 1.0"]
    assert r.stderr_lines == ['Found file: "/var/lib/nc-varwriter/state"']


def test_commit_reports_first_19_files_on_sp2(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run(
        "mkdir -p /var/lib/many && i=0 && while [ $i -lt 25 ]; do "
        "touch /var/lib/many/f$i; i=$((i + 1)); done && ostree container commit"
    )
    assert r.returncode == 1
    found = [line for line in r.stderr_lines if line.startswith("Found file: ")]
    assert len(found) == 19
    assert all(line.startswith('Found file: "var/lib/many/f') for line in found)
    assert r.stderr_lines[-1] == FOUND_CONTENT


def test_commit_reports_first_19_files_on_sp1(nestos_sp1: NestosImage) -> None:
    r = nestos_sp1.run(
        "mkdir -p /var/lib/many && i=0 && while [ $i -lt 25 ]; do "
        "touch /var/lib/many/f$i; i=$((i + 1)); done && ostree container commit "
        "&& ls /var/lib/many | wc -l"
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines == ["Checking /var for files", "25"]  # nothing removed
    assert len(r.stderr_lines) == 19
    assert all(line.startswith('Found file: "/var/lib/many/f') for line in r.stderr_lines)


# ------------------------------------------------------- podman build


def test_documented_layer_builds(nestos_sp2: NestosImage) -> None:
    r, tag = nestos_sp2.build(
        "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
        "RUN rpm-ostree install strace nc-hello && rm -rf /var/cache && ostree container commit"
    )
    assert r.returncode == 0, r.output
    run = subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            tag,
            "sh",
            "-c",
            # The commit removed /var, empty once /var/cache went.
            "nc-hello && strace -V && ! test -e /var",
        ],
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
    assert "Checking /var for files" in r.output
    assert 'Found file: "/var/lib/nc-varwriter/state"' in r.output


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


# ------------------------------------- revised contract (2026-11-30 audit)

# RPMs for the cases the universe repo has no package for, in their own repo
# (``ncrev``, file:// baseurl) mounted at REV_MOUNT: newer versions of base
# packages (glibc, toolbox), packages needing them, an RPM obsoleting a base
# package, a failing %post, and scriptlets creating a group and a static-id user.
REV_MOUNT = "/rpms-revised"
REV_REPO = "ncrev"
REV_SPECS: dict[str, tuple[str, str, str, str, str]] = {
    "glibc": ("2.38", "", "", "", ""),
    "toolbox": (
        "0.0.99.5",
        "",
        "mkdir -p %{buildroot}/usr/bin\n"
        "printf '#!/bin/sh\\necho toolbox 0.0.99.5\\n' > %{buildroot}/usr/bin/toolbox\n"
        "chmod 0755 %{buildroot}/usr/bin/toolbox",
        "/usr/bin/toolbox",
        "",
    ),
    "nc-needs-glibc": ("1.0", "Requires: glibc >= 2.38", "", "", ""),
    "nc-needs-systemd": ("1.0", "Requires: systemd >= 252", "", "", ""),
    "nc-newbox": ("1.0", "Obsoletes: toolbox", "", "", ""),
    "nc-badpost": ("1.0", "", "", "", "%post\necho nc-badpost failing >&2\nexit 3"),
    "nc-groups": (
        "1.0",
        "",
        "",
        "",
        "%pre\ngroupadd -r ncgrp\n"
        'useradd -r -M -u 4242 -g ncgrp -c "fixed id" -d /nonexistent -s /bin/sh ncfixed',
    ),
    "nc-units": (
        "1.0",
        "",
        "d=%{buildroot}/usr/lib/systemd\n"
        "mkdir -p $d/system $d/system-preset\n"
        "for u in nc-preset nc-ignored; do printf '[Service]\\nExecStart=/bin/true\\n"
        "[Install]\\nWantedBy=multi-user.target\\n' > $d/system/$u.service; done\n"
        "echo 'enable nc-preset.service' > $d/system-preset/50-nc-units.preset",
        "/usr/lib/systemd/system/nc-preset.service\n"
        "/usr/lib/systemd/system/nc-ignored.service\n"
        "/usr/lib/systemd/system-preset/50-nc-units.preset",
        "%post\nsystemctl enable nc-ignored.service\nsystemctl --no-reload start nc-ignored.service\n"
        "systemctl preset nc-preset.service",
    ),
}  # name -> (version, tags, %install body, %files, scriptlets)
REV_REPO_FILE = (
    f"printf '[{REV_REPO}]\\nname={REV_REPO}\\nbaseurl=file://{REV_MOUNT}/\\n"
    "enabled=1\\ngpgcheck=0\\n' > /etc/yum.repos.d/" + REV_REPO + ".repo"
)


def rev_spec(name: str, version: str, tags: str, install: str, files: str, scripts: str) -> str:
    return (
        f"Name: {name}\nVersion: {version}\nRelease: 1\nSummary: {name} (revised contract)\n"
        f"License: MIT\nBuildArch: noarch\n{tags}\n%description\n{name}.\n"
        f"%install\n{install}\n{scripts}\n%files\n{files}\n"
    )


@pytest.fixture(scope="session")
def revised_rpms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A createrepo_c repository of the REV_SPECS RPMs (also usable as local files)."""
    top = tmp_path_factory.mktemp("revised-rpms")
    repo = top / "repo"
    repo.mkdir()
    for name, fields in REV_SPECS.items():
        spec = top / f"{name}.spec"
        spec.write_text(rev_spec(name, *fields))
        cmd = ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top / 'build'}"]
        cmd += ["--define", f"_rpmdir {repo}", "--define", "_build_id_links none"]
        cmd += ["--define", "_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm", str(spec)]
        subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run(["createrepo_c", "--quiet", str(repo)], check=True, capture_output=True)
    return repo


def run_rev(image: NestosImage, repo: Path, script: str, with_repo: bool = True) -> Result:
    """Run ``script`` with the ncrev repository configured and its RPMs at REV_MOUNT."""
    return image.run(f"{REV_REPO_FILE} && {script}", volumes={repo: REV_MOUNT}, with_repo=with_repo)


def test_base_package_locked_newer_in_repo(any_nestos: NestosImage, revised_rpms: Path) -> None:
    r = run_rev(any_nestos, revised_rpms, "rpm-ostree install nc-needs-glibc")
    assert r.returncode == 1
    base = any_nestos.run("rpm -q glibc", with_repo=False).stdout.strip()
    assert r.stderr_lines == [
        "error: Could not depsolve transaction; 1 problem detected:",
        " Problem: package nc-needs-glibc-1.0-1.noarch from ncrev requires glibc >= 2.38, "
        "but none of the providers can be installed",
        f"  - cannot install both glibc-2.38-1.noarch from ncrev and {base} from @System",
        "  - conflicting requests",
    ]
    check = run_rev(any_nestos, revised_rpms, "rpm-ostree install nc-needs-glibc; rpm -q glibc")
    assert check.stdout_lines[-1] == base  # never upgraded


def test_base_package_locked_nothing_newer(nestos_sp2: NestosImage, revised_rpms: Path) -> None:
    r = run_rev(nestos_sp2, revised_rpms, "rpm-ostree install nc-needs-systemd")
    assert r.returncode == 1
    assert r.stderr_lines == [
        "error: Could not depsolve transaction; 1 problem detected:",
        " Problem: conflicting requests",
        "  - nothing provides systemd >= 252 needed by nc-needs-systemd-1.0-1.noarch from ncrev",
    ]


@pytest.mark.parametrize("flag", ["-n", "--dry-run", "--idempotent", "--uninstall=toolbox"])
def test_install_flags_ignored_in_container(nestos_sp2: NestosImage, flag: str) -> None:
    r = nestos_sp2.run(f"rpm-ostree install {flag} nc-hello && nc-hello && rpm -q toolbox")
    assert r.returncode == 0, r.output
    assert "hello from nc-hello 1.0" in r.stdout_lines
    assert "Exiting because of '--dry-run' option" not in r.stdout


def test_install_uninstall_with_separate_value_ignored(nestos_sp2: NestosImage) -> None:
    r = nestos_sp2.run("rpm-ostree install --uninstall toolbox nc-hello && rpm -q toolbox nc-hello")
    assert r.returncode == 0, r.output


@pytest.mark.parametrize(
    "option", ["--enablerepo=nctest", "--disablerepo=OS", "--enablerepo", "--disablerepo"]
)
def test_install_repo_options_unknown(any_nestos: NestosImage, option: str) -> None:
    r = any_nestos.run(f"rpm-ostree install {option} nc-hello")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr_lines == [f"error: Unknown option {option}"]


def test_install_plan_not_printed_on_sp1(nestos_sp1: NestosImage) -> None:
    r = nestos_sp1.run("rpm-ostree install nc-hello && nc-hello")
    assert r.returncode == 0, r.output
    assert "hello from nc-hello 1.0" in r.stdout_lines
    assert not any(line.startswith("Installing ") for line in r.stdout_lines)
    assert not any(line.startswith("  nc-") for line in r.stdout_lines)


def test_failing_post_fails_the_transaction(any_nestos: NestosImage, revised_rpms: Path) -> None:
    r = run_rev(any_nestos, revised_rpms, "rpm-ostree install nc-badpost")
    assert r.returncode == 1
    assert r.stderr_lines[-1] == (
        "error: Running %post for nc-badpost: bwrap(/bin/sh): Child process exited with code 3; "
        "run journalctl -t 'rpm-ostree(nc-badpost.post)' for more information"
    )
    assert not any("warning" in line for line in r.stderr_lines)


def test_failing_post_fails_the_build(nestos_sp2: NestosImage, revised_rpms: Path) -> None:
    rpm = next(revised_rpms.glob("nc-badpost-*.rpm"))
    r, _ = nestos_sp2.build(
        f"COPY {rpm.name} /tmp/\nRUN rpm-ostree install /tmp/{rpm.name} && ostree container commit",
        files={rpm.name: rpm.read_bytes()},
    )
    assert r.returncode != 0
    assert "error: Running %post for nc-badpost" in r.output


def test_scriptlet_systemctl_only_presets(any_nestos: NestosImage, revised_rpms: Path) -> None:
    wants = "/etc/systemd/system/multi-user.target.wants"
    r = run_rev(
        any_nestos,
        revised_rpms,
        f"rpm-ostree install nc-units && test -L {wants}/nc-preset.service "
        f"&& ! test -e {wants}/nc-ignored.service",
    )
    assert r.returncode == 0, r.output
    ignored = [line for line in r.stdout_lines if line.startswith("rpm-ostree-systemctl: ")]
    assert ignored == [
        "rpm-ostree-systemctl: Ignoring: enable",
        "rpm-ostree-systemctl: Ignoring: nc-ignored.service",
        "rpm-ostree-systemctl: Ignoring: start",
        "rpm-ostree-systemctl: Ignoring: nc-ignored.service",
    ]


def test_sysusers_fragments_group_and_static_user(
    nestos_sp2: NestosImage, revised_rpms: Path
) -> None:
    r = run_rev(
        nestos_sp2,
        revised_rpms,
        "rpm-ostree install nc-groups >/dev/null && cd /usr/lib/sysusers.d "
        "&& cat 30-rpmostree-pkg-group-ncgrp.conf 35-rpmostree-pkg-user-ncfixed.conf "
        "&& getent group ncgrp >/dev/null && getent passwd ncfixed",
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines[:4] == [
        "# Generated by rpm-ostree",
        "g ncgrp -",
        "# Generated by rpm-ostree",
        'u ncfixed 4242:ncgrp "fixed id" /nonexistent /bin/sh',
    ]
    assert r.stdout_lines[4].startswith("ncfixed:x:4242:")


def test_sysusers_no_fragments_on_sp1(nestos_sp1: NestosImage, revised_rpms: Path) -> None:
    r = run_rev(
        nestos_sp1,
        revised_rpms,
        "rpm-ostree install nc-groups >/dev/null && getent passwd ncfixed "
        "&& ! ls /usr/lib/sysusers.d/*rpmostree* 2>/dev/null",
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines[0].startswith("ncfixed:x:4242:")


def test_override_remove_with_replace(nestos_sp2: NestosImage, revised_rpms: Path) -> None:
    r = nestos_sp2.run(
        f"rpm-ostree override remove zincati --replace {REV_MOUNT}/toolbox-0.0.99.5-1.noarch.rpm"
        " && ! rpm -q zincati && rpm -q toolbox && toolbox",
        volumes={revised_rpms: REV_MOUNT},
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines[-2:] == ["toolbox-0.0.99.5-1.noarch", "toolbox 0.0.99.5"]


def test_override_replace_with_remove(nestos_sp2: NestosImage, revised_rpms: Path) -> None:
    r = nestos_sp2.run(
        f"rpm-ostree override replace {REV_MOUNT}/toolbox-0.0.99.5-1.noarch.rpm --remove zincati"
        " && ! rpm -q zincati && rpm -q toolbox",
        volumes={revised_rpms: REV_MOUNT},
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines[-1] == "toolbox-0.0.99.5-1.noarch"


def test_override_replace_with_remove_of_missing(
    nestos_sp2: NestosImage, revised_rpms: Path
) -> None:
    r = nestos_sp2.run(
        f"rpm-ostree override replace {REV_MOUNT}/toolbox-0.0.99.5-1.noarch.rpm --remove nc-nope",
        volumes={revised_rpms: REV_MOUNT},
    )
    assert r.returncode == 1
    assert r.stderr_lines == ["error: No installed package matches 'nc-nope'"]


def test_override_replace_from_repo(nestos_sp2: NestosImage, revised_rpms: Path) -> None:
    r = run_rev(
        nestos_sp2,
        revised_rpms,
        f"rpm-ostree override replace --experimental --from repo={REV_REPO} toolbox "
        "&& rpm -q toolbox && rpm -q glibc",
    )
    assert r.returncode == 0, r.output
    assert r.stdout_lines[-2] == "toolbox-0.0.99.5-1.noarch"
    assert r.stdout_lines[-1].startswith("glibc-2.34-")  # only the named package moves


def test_override_replace_from_needs_experimental(
    nestos_sp2: NestosImage, revised_rpms: Path
) -> None:
    r = run_rev(
        nestos_sp2, revised_rpms, f"rpm-ostree override replace --from repo={REV_REPO} toolbox"
    )
    assert r.returncode == 1
    assert r.stderr_lines == ["error: Non-local replacement overrides not implemented yet"]


def test_override_replace_obsoleting_other_name(
    nestos_sp2: NestosImage, revised_rpms: Path
) -> None:
    r = nestos_sp2.run(
        f"rpm-ostree override replace {REV_MOUNT}/nc-newbox-1.0-1.noarch.rpm",
        volumes={revised_rpms: REV_MOUNT},
    )
    assert r.returncode == 1
    assert r.stderr_lines == [
        "error: Package nc-newbox-1.0-1.noarch doesn't replace a package of the same name"
    ]


def test_override_replace_local_fails_on_sp1(
    nestos_sp1: NestosImage, revised_rpms: Path, rpm_repo: RpmRepo, rpm_repo_url: str
) -> None:
    arg = f"{REV_MOUNT}/toolbox-0.0.99.5-1.noarch.rpm"
    r = nestos_sp1.run(f"rpm-ostree override replace {arg}", volumes={revised_rpms: REV_MOUNT})
    assert r.returncode == 1
    assert r.stderr_lines == [f"error: Failed to add local pkg {arg} to sack"]
    url = f"{rpm_repo_url}extra/{extra_hello(rpm_repo)}"
    r = nestos_sp1.run(f"rpm-ostree override replace {url}")
    assert r.returncode == 1
    assert r.stderr_lines == [f"error: Failed to add local pkg {url} to sack"]


def test_override_replace_from_unknown_on_sp1(nestos_sp1: NestosImage) -> None:
    r = nestos_sp1.run("rpm-ostree override replace --experimental --from repo=nctest nc-hello")
    assert r.returncode == 1
    assert r.stderr_lines == ["error: Unknown option --from"]
