"""The build helper's `kmods` and `initramfs` in a throwaway root with the real depmod
and modinfo: a module installed for the image's kernel, loaded at boot with its options,
checked to be there, and the initramfs regenerated for that kernel."""

from __future__ import annotations

import stat

import pytest

from tests.universe.helper_root import DRACUT, HelperRoot, build_module

KVER = "5.10.0-182.0.0.95.oe2203sp2.x86_64"


@pytest.fixture
def kernel(box: HelperRoot) -> HelperRoot:
    """The image's kernel, with the index files its package ships."""
    for name in ("vmlinuz", "modules.order", "modules.builtin", "modules.builtin.modinfo"):
        box.write(f"/usr/lib/modules/{KVER}/{name}", "kernel image\n" if name == "vmlinuz" else "")
    return box


def module(box: HelperRoot, name: str, depends: str = "") -> str:
    """A module file in the root, where a RUN step's bind mount would put it."""
    built = build_module(box.top / "modules", name, KVER, depends)
    box.write(f"/run/nestcustom/kmod/{name}.ko", "")
    (box.root / f"run/nestcustom/kmod/{name}.ko").write_bytes(built.read_bytes())
    return f"/run/nestcustom/kmod/{name}.ko"


@pytest.mark.parametrize("config_dirs", [True, False])  # an image may lack them: made
def test_a_module_is_installed_loaded_and_given_its_options(
    kernel: HelperRoot, config_dirs: bool
) -> None:
    if not config_dirs:
        kernel.remove("/usr/lib/modules-load.d")
        kernel.remove("/usr/lib/modprobe.d")
    demo = module(kernel, "nc_demo")
    done = kernel.helper(
        "kmods", "--conf", "site", "--install", "nc_demo", demo, "--load", "nc_demo",
        "--options", "nc_demo", "greeting=hi os={{os.id}}",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    placed = kernel.path(f"/usr/lib/modules/{KVER}/extra/nc_demo.ko")
    assert placed.read_bytes() == (kernel.root / demo.lstrip("/")).read_bytes()
    assert stat.S_IMODE(placed.stat().st_mode) == 0o644
    assert kernel.path("/usr/lib/modules-load.d/nestcustom-site.conf").read_text() == "nc_demo\n"
    assert kernel.path("/usr/lib/modprobe.d/nestcustom-site.conf").read_text() == (
        "options nc_demo greeting=hi os=nestos\n"
    )
    found = kernel.sh(f"modinfo -k {KVER} -F filename nc_demo")
    assert found.stdout == f"/lib/modules/{KVER}/extra/nc_demo.ko\n"  # depmod ran


def test_several_modules_each_get_their_lines(kernel: HelperRoot) -> None:
    one, two = module(kernel, "nc_one"), module(kernel, "nc_two")
    done = kernel.helper(
        "kmods", "--conf", "r", "--install", "nc_one", one, "--install", "nc_two", two,
        "--load", "nc_two", "--load", "nc_one", "--options", "nc_one", "a=1",
        "--options", "nc_two", "b=2",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert (
        kernel.path("/usr/lib/modules-load.d/nestcustom-r.conf").read_text() == "nc_two\nnc_one\n"
    )
    assert kernel.path("/usr/lib/modprobe.d/nestcustom-r.conf").read_text() == (
        "options nc_one a=1\noptions nc_two b=2\n"
    )
    assert sorted(p.name for p in kernel.path(f"/usr/lib/modules/{KVER}/extra").iterdir()) == [
        "nc_one.ko", "nc_two.ko",
    ]  # fmt: skip


def test_a_module_the_kernel_does_not_have_stops_the_step(kernel: HelperRoot) -> None:
    demo = module(kernel, "nc_demo")
    done = kernel.helper(
        "kmods", "--conf", "r", "--install", "nc_demo", demo, "--load", "nc_missing"
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"nestcustom: kernel module nc_missing is not there for kernel {KVER}: install it with "
        "src: or the RPM that ships it\n"
    )


@pytest.mark.parametrize("option", [["--options", "nc_gone", "x=1"], ["--load", "nc_gone"]])
def test_loading_or_configuring_a_missing_module_is_refused(
    kernel: HelperRoot, option: list[str]
) -> None:
    done = kernel.helper("kmods", "--conf", "r", *option)
    assert done.returncode == 1
    assert done.stderr.startswith("nestcustom: kernel module nc_gone is not there for kernel")


def test_a_module_installed_under_a_name_that_is_not_its_own_stops_the_step(
    kernel: HelperRoot,
) -> None:
    demo = module(kernel, "nc_demo")
    done = kernel.helper("kmods", "--conf", "r", "--install", "nc_other", demo)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"nestcustom: kernel module nc_other is not there for kernel {KVER}"
    )


def test_kmods_unknown_option(kernel: HelperRoot) -> None:
    done = kernel.helper("kmods", "--conf", "r", "--blacklist", "x")
    assert (done.returncode, done.stderr) == (1, "nestcustom: kmods: unknown option --blacklist\n")


def test_kmods_need_exactly_one_kernel(box: HelperRoot) -> None:
    done = box.helper("kmods", "--conf", "r", "--load", "x")
    assert done.returncode == 1
    assert done.stderr.startswith("nestcustom: found 0 kernels")
    assert not box.path("/usr/lib/modules-load.d/nestcustom-r.conf").exists()


def test_initramfs_for_the_images_kernel_with_the_drivers_named(kernel: HelperRoot) -> None:
    kernel.write("/usr/bin/dracut", DRACUT, mode=0o755)
    done = kernel.helper("initramfs", "nc_demo", "nc_other")
    assert (done.returncode, done.stderr) == (0, "")
    image = f"/usr/lib/modules/{KVER}/initramfs.img"
    assert (kernel.root / "var/log/dracut.calls").read_text() == (
        f"--no-hostonly --kver {KVER} --reproducible --add ostree -f "
        f"--add-drivers nc_demo nc_other {image}\n"
    )
    written = kernel.path(image)
    assert written.exists() and stat.S_IMODE(written.stat().st_mode) == 0o600


def test_initramfs_without_drivers_adds_none(kernel: HelperRoot) -> None:
    kernel.write("/usr/bin/dracut", DRACUT, mode=0o755)
    done = kernel.helper("initramfs")
    assert done.returncode == 0
    assert (kernel.root / "var/log/dracut.calls").read_text() == (
        f"--no-hostonly --kver {KVER} --reproducible --add ostree -f "
        f"/usr/lib/modules/{KVER}/initramfs.img\n"
    )


def test_a_failing_dracut_fails_the_step(kernel: HelperRoot) -> None:
    kernel.write("/usr/bin/dracut", "#!/bin/sh\necho 'dracut: no space' >&2\nexit 1\n", mode=0o755)
    done = kernel.helper("initramfs")
    assert (done.returncode, done.stderr) == (1, "dracut: no space\n")


def installed_module(box: HelperRoot, name: str, where: str = "extra", depends: str = "") -> None:
    built = build_module(box.top / "modules", name, KVER, depends)
    target = box.write(f"/usr/lib/modules/{KVER}/{where}/{name}.ko", "")
    target.write_bytes(built.read_bytes())


def test_check_names_a_module_whose_dependency_the_kernel_lacks(kernel: HelperRoot) -> None:
    installed_module(kernel, "nc_base")
    installed_module(kernel, "nc_needy", depends="nc_base,nc_absent")
    installed_module(kernel, "nc_update", where="updates", depends="nc_gone")
    assert kernel.sh(f"depmod -a {KVER}").returncode == 0
    done = kernel.helper("check", "--host-rules", "--base", "/base")
    assert done.returncode == 1
    assert sorted(done.stderr.splitlines()[:-1]) == [
        f"nestcustom check: /usr/lib/modules/{KVER}/extra/nc_needy.ko needs module nc_absent, "
        f"which kernel {KVER} does not have",
        f"nestcustom check: /usr/lib/modules/{KVER}/updates/nc_update.ko needs module nc_gone, "
        f"which kernel {KVER} does not have",
    ]
    assert done.stderr.splitlines()[-1] == "nestcustom: 2 check(s) failed; no image was tagged"


def test_check_names_a_module_file_that_is_no_module(kernel: HelperRoot) -> None:
    kernel.write(f"/usr/lib/modules/{KVER}/extra/broken.ko.xz", "not an ELF object\n")
    installed_module(kernel, "nc_fine")
    assert kernel.sh(f"depmod -a {KVER} 2>/dev/null; true").returncode == 0
    done = kernel.helper("check", "--host-rules", "--base", "/base")
    assert done.stderr.splitlines() == [
        f"nestcustom check: /usr/lib/modules/{KVER}/extra/broken.ko.xz: not a kernel module "
        "modinfo can read",
        "nestcustom: 1 check(s) failed; no image was tagged",
    ]


def test_check_ignores_module_trees_of_directories_without_a_kernel(box: HelperRoot) -> None:
    # Only the image's kernels (a vmlinuz beside them) are checked.
    box.write("/usr/lib/modules/5.0.0-old/extra/stale.ko", "not an ELF object\n")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


def test_check_all_dependencies_present_passes(kernel: HelperRoot) -> None:
    installed_module(kernel, "nc_base")
    installed_module(kernel, "nc_needy", depends="nc_base")
    assert kernel.sh(f"depmod -a {KVER}").returncode == 0
    done = kernel.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")
