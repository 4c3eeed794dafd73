"""The build helper hands dracut and semodule each recipe value as one argument, as the
recipe wrote it: a path with a blank or a glob character is neither split into words nor
expanded against the image's files (the schema refuses such paths too; this is the
helper's own guard). Fake dracut and semodule in the throwaway root record their argv,
one argument a line."""

from __future__ import annotations

import pytest

from tests.universe.helper_root import HelperRoot

KVER = "5.10.0-182.0.0.95.oe2203sp2.x86_64"

# Each argument on its own line, then an end mark: what the program was really given.
# dracut's last argument is the image it writes.
RECORDER = (
    "#!/bin/sh\nfor a do printf '%s\\n' \"$a\"; done >>/var/log/{name}.argv\n"
    "echo --- >>/var/log/{name}.argv\n"
    'case $a in *.img) : >"$a" ;; esac\n'
)


def recorded(box: HelperRoot, name: str) -> list[str]:
    return (box.root / f"var/log/{name}.argv").read_text().splitlines()


@pytest.fixture
def kernel(box: HelperRoot) -> HelperRoot:
    box.write(f"/usr/lib/modules/{KVER}/vmlinuz", "kernel image\n")
    box.write("/usr/bin/dracut", RECORDER.format(name="dracut"), mode=0o755)
    # Files a glob would match, were the helper to expand one.
    box.write("/etc/match-a.conf", "")
    box.write("/etc/match-b.conf", "")
    return box


def test_initramfs_options_reach_dracut_each_intact(kernel: HelperRoot) -> None:
    done = kernel.helper(
        "initramfs", "nc_demo", "nc_other",
        "--add", "nc-mod", "--omit", "plymouth", "--omit-drivers", "floppy",
        "--install", "/etc/match-*.conf", "--install", "/etc/with blank.conf",
        "--add", "second",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert recorded(kernel, "dracut") == [
        "--no-hostonly", "--kver", KVER, "--reproducible", "--add", "ostree", "-f",
        "--add-drivers", "nc_demo nc_other",
        "--add", "nc-mod", "--omit", "plymouth", "--omit-drivers", "floppy",
        "--install", "/etc/match-*.conf", "--install", "/etc/with blank.conf",
        "--add", "second",
        f"/usr/lib/modules/{KVER}/initramfs.img", "---",
    ]  # fmt: skip


def test_initramfs_options_without_drivers(kernel: HelperRoot) -> None:
    done = kernel.helper("initramfs", "--omit", "nfs", "--install", "/etc/match-a.conf")
    assert (done.returncode, done.stderr) == (0, "")
    assert recorded(kernel, "dracut") == [
        "--no-hostonly", "--kver", KVER, "--reproducible", "--add", "ostree", "-f",
        "--omit", "nfs", "--install", "/etc/match-a.conf",
        f"/usr/lib/modules/{KVER}/initramfs.img", "---",
    ]  # fmt: skip


def test_initramfs_option_without_its_value_is_refused(kernel: HelperRoot) -> None:
    done = kernel.helper("initramfs", "nc_demo", "--omit")
    assert (done.returncode, done.stderr) == (1, "nestcustom: initramfs: --omit needs a value\n")
    assert not (kernel.root / "var/log/dracut.argv").exists()


def test_selinux_modules_reach_semodule_each_intact(box: HelperRoot) -> None:
    box.write("/usr/sbin/semodule", RECORDER.format(name="semodule"), mode=0o755)
    box.write("/usr/sbin/setsebool", RECORDER.format(name="setsebool"), mode=0o755)
    box.write("/etc/selinux/config", "SELINUXTYPE=targeted\n")
    box.write("/etc/selinux/semanage.conf", "store-root=/etc/selinux\n")
    (box.root / "etc/selinux/targeted/active").mkdir(parents=True)
    box.write("/run/nestcustom/selinux/a.cil", "")
    box.write("/run/nestcustom/selinux/b.cil", "")
    box.write("/usr/share/selinux/packages/with blank.pp", "")
    done = box.helper(
        "selinux", "--nestos", "--priority", "410",
        "--module", "/run/nestcustom/selinux/*.cil",
        "--boolean", "nc_flag", "on",
        "--module", "/usr/share/selinux/packages/with blank.pp",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert recorded(box, "semodule") == [
        "-N", "-X", "410",
        "-i", "/run/nestcustom/selinux/*.cil",
        "-i", "/usr/share/selinux/packages/with blank.pp", "---",
    ]  # fmt: skip
    assert recorded(box, "setsebool") == ["-P", "-N", "nc_flag=1", "---"]
    assert done.stderr.splitlines()[0] == (
        "+ semodule -N -X 410 -i /run/nestcustom/selinux/*.cil "
        "-i '/usr/share/selinux/packages/with blank.pp'"
    )
