"""The fixture NestOS images against the contract facts recipe language part 3 relies on
(docs/contracts/nestos-rpm-ostree.md section 1: local RPM files with named packages, /opt,
and dracut as the images' stand-in of it reads its configuration)."""

from __future__ import annotations

import pytest

from ..rpmrepo import RpmRepo
from .fixtures_base import EXTRA_MOUNT, RPMS_MOUNT, NestosImage
from .test_contract import FOUND_CONTENT, extra_hello, rpm_file

pytestmark = pytest.mark.universe


def test_local_files_and_names_install_in_one_transaction(
    nestos_sp2: NestosImage, rpm_repo: RpmRepo
) -> None:
    """2022.16: each argument ending in .rpm is opened as a file (rust/src/client.rs
    client_handle_fd_argument) and joins the named packages in one treefile and one
    transaction (src/app/rpmostree-pkg-builtins.cxx); the files' dependencies come from
    the repos."""
    hello2 = extra_hello(rpm_repo)
    r = nestos_sp2.run(f"rpm-ostree install nc-scriptlet {EXTRA_MOUNT}/{hello2} && nc-hello")
    assert r.returncode == 0, r.output
    i = r.stdout_lines.index("Installing 3 packages:")
    assert sorted(r.stdout_lines[i + 1 : i + 4]) == sorted(
        [
            f"  {hello2.removesuffix('.rpm')} (commandline)",
            f"  {rpm_repo.packages['nc-libgreet']} (nctest)",
            f"  {rpm_repo.packages['nc-scriptlet']} (nctest)",
        ]
    )


def test_a_glob_is_no_file_to_rpm_ostree(nestos_sp2: NestosImage) -> None:
    """rpm-ostree expands no glob (the shell does): the literal is a missing file."""
    r = nestos_sp2.run(f"rpm-ostree install '{RPMS_MOUNT}/nc-*.rpm'")
    assert r.returncode == 1
    assert r.stderr_lines == [
        f"error: Handling argument {RPMS_MOUNT}/nc-*.rpm: No such file or directory (os error 2)"
    ]


def test_sp1_takes_every_argument_for_a_name(nestos_sp1: NestosImage, rpm_repo: RpmRepo) -> None:
    libgreet = rpm_file(rpm_repo, "nc-libgreet")
    r = nestos_sp1.run(f"rpm-ostree install nc-hello {RPMS_MOUNT}/{libgreet}")
    assert r.returncode == 1
    assert r.stderr_lines == [f"error: Packages not found: {RPMS_MOUNT}/{libgreet}"]


def test_opt_is_a_link_into_a_var_the_image_lacks(nestos_sp2: NestosImage) -> None:
    """/opt -> var/opt (2022.16 rust/src/composepost.rs compose_init_rootfs), and no
    /var/opt in the image: a host makes it at boot (src/app/rpm-ostree-0-integration.conf),
    and rpm-ostree's own advice starts with `mkdir /var/opt` (docs/container.md, "Dealing
    with /opt"). A package with /opt content fails; with /var/opt made, the commit refuses
    what landed there."""
    r = nestos_sp2.run("readlink /opt; test -e /var/opt || echo no-var-opt")
    assert r.stdout_lines == ["var/opt", "no-var-opt"]
    r = nestos_sp2.run("rpm-ostree install nc-optapp")
    assert r.returncode == 1
    assert "/opt/nc-optapp" in r.stderr and "No such file or directory" in r.stderr, r.output
    r = nestos_sp2.run(
        "mkdir /var/opt && rpm-ostree install nc-optapp >/dev/null && ostree container commit"
    )
    assert r.returncode == 1
    assert r.stderr_lines[-1] == FOUND_CONTENT
    assert 'Found file: "var/opt/nc-optapp/bin/tool"' in r.stderr_lines


def test_dracut_reads_its_configuration_and_needs_its_modules(nestos_sp2: NestosImage) -> None:
    """The stand-in sources /etc/dracut.conf.d/*.conf as dracut does, and refuses a module it
    has no directory for: what a config or module shipped too late would do."""
    kver = "$(ls /usr/lib/modules)"
    missing = nestos_sp2.run(
        f"dracut --no-hostonly --kver {kver} --add ncdemo -f /tmp/i", with_repo=False
    )
    assert missing.returncode == 1
    assert missing.stderr_lines == ["dracut: dracut module 'ncdemo' cannot be found or installed."]
    r = nestos_sp2.run(
        "mkdir -p /usr/lib/dracut/modules.d/90ncdemo "
        "&& echo 'add_dracutmodules+=\" ncdemo \"' > /etc/dracut.conf.d/ncdemo.conf "
        f"&& dracut --no-hostonly --kver {kver} --omit crypt --install /etc/hostname -f /tmp/i "
        "&& cat /tmp/i",
        with_repo=False,
    )
    assert r.returncode == 0, r.output
    assert "config: /etc/dracut.conf.d/ncdemo.conf" in r.stdout_lines
    assert "dracut module: ncdemo" in r.stdout_lines
    assert "file: /etc/hostname" in r.stdout_lines
