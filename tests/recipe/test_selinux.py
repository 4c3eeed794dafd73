"""The `selinux:` section, validated and rendered: located problems, and the exact
commands the Containerfile runs (split back with shlex, as the build's shell would)."""

from __future__ import annotations

import bz2
import hashlib
import struct
from pathlib import Path

import pytest

from nestcustom.containerfile.commands import HELPER
from nestcustom.containerfile.render import render_containerfile
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.selinuxmodules import pp_name
from tests.conftest import BASE, FIXTURES, WriteRecipe
from tests.recipe.test_system_config import problems, runs

HEAD = f"name: r\nbase: {{image: {BASE}}}\n"
NEWSTART = "name: r\nbase: {image: registry.example.com/newstart:6.06, flavor: newstart}\n"
CIL = "(type nc_site_t)\n(roletype object_r nc_site_t)\n"


def policy_package(name: str, policy_type: int = 2) -> bytes:
    """A policy package header as checkmodule and semodule_package write it (libsepol)."""
    text = b"SE Linux Module"
    module = struct.pack("<II", 0xF97CFF8D, len(text)) + text
    module += struct.pack("<IIIII", policy_type, 21, 1, 8, 0)
    if policy_type == 2:
        module += struct.pack("<I", len(name)) + name.encode() + struct.pack("<I", 3) + b"1.0"
    return struct.pack("<IIII", 0xF97CFF8F, 1, 1, 16) + module + b"\0" * 64


@pytest.fixture
def modules(project: Path) -> Path:
    folder = project / "files" / "selinux"
    folder.mkdir()
    (folder / "nc_site.cil").write_text(CIL)
    (folder / "myapp.pp").write_bytes(policy_package("myapp"))
    return folder


def test_modules_then_booleans_in_one_step_after_the_files(
    write_recipe: WriteRecipe, modules: Path
) -> None:
    path = write_recipe(
        HEAD + "files: [{src: files/motd, dest: /etc/motd}]\nsystemd: {enable: [chronyd]}\n"
        "selinux:\n  booleans: {virt_use_nfs: false, httpd_can_network_connect: on}\n"
        "  modules: [files/selinux/nc_site.cil, files/selinux/myapp.pp]\n  priority: 500\n"
    )
    cil = f"/run/nestcustom/selinux/{hashlib.sha256(CIL.encode()).hexdigest()[:16]}/nc_site.cil"
    pp = hashlib.sha256(policy_package("myapp")).hexdigest()[:16]
    steps = runs(path)
    assert steps[1] == [  # after the files step, before the units
        [
            *["sh", HELPER, "selinux", "--nestos", "--priority", "500"],
            *["--module", cil, "--module", f"/run/nestcustom/selinux/{pp}/myapp.pp"],
            *["--boolean", "httpd_can_network_connect", "on", "--boolean", "virt_use_nfs", "off"],
        ],
        ["ostree", "container", "commit"],
    ]
    assert steps[2][0][:2] == ["systemctl", "enable"]
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    # Bind-mounted under its own name (semodule names a .cil module after its file).
    assert f"--mount=type=bind,source=files/selinux/nc_site.cil,target={cil}" in text


def test_newstart_runs_the_same_helper_without_an_ostree_commit(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(NEWSTART + "selinux: {booleans: {container_manage_cgroup: yes}}\n")
    assert runs(path) == [[["sh", HELPER, "selinux", "--boolean", "container_manage_cgroup", "on"]]]


def test_the_module_name_is_read_from_the_package_and_the_recipe_digest_follows_it(
    write_recipe: WriteRecipe, modules: Path
) -> None:
    path = write_recipe(HEAD + "selinux: {modules: [files/selinux/myapp.pp]}\n")
    before = load_recipe(path).recipe
    assert [m.name for m in before.selinux.modules] == ["myapp"]
    (modules / "myapp.pp").write_bytes(bz2.compress(policy_package("myapp2")))
    after = load_recipe(path).recipe
    assert [m.name for m in after.selinux.modules] == ["myapp2"]  # compressed, as Fedora's
    assert after.digest != before.digest


def test_a_base_module_is_called_base_and_junk_is_no_package() -> None:
    assert pp_name(policy_package("", policy_type=1)) == "base"
    assert pp_name(b"(type x)\n") is None
    assert pp_name(policy_package("myapp")[:40]) is None  # cut short
    assert pp_name(b"BZh9 not really bzip2") is None


def test_selinux_problems_are_located(write_recipe: WriteRecipe, modules: Path) -> None:
    (modules / "not-a-package.pp").write_text("(type x)\n")
    (modules / "1st.cil").write_text(CIL)
    (modules / "copy").mkdir()
    (modules / "copy" / "nc_site.cil").write_text(CIL)
    path = write_recipe(
        HEAD + "layers:\n  - {name: slim, remove: [policycoreutils]}\n"
        "selinux:\n"
        "  booleans: {httpd-can-connect: true, ok_bool: 1, other: 'on'}\n"
        "  modules:\n"
        "    - files/selinux/missing.cil\n"
        "    - files/selinux/nc_site.te\n"
        "    - ../outside.cil\n"
        "  priority: 1000\n"
    )
    assert problems(path) == [
        "selinux.booleans.httpd-can-connect: key 'httpd-can-connect' is not an SELinux boolean name",
        "selinux.booleans.ok_bool: expected true or false, got a number",
        "selinux.booleans.other: expected true or false, got text",
        "selinux.modules[1]: 'files/selinux/nc_site.te' is not a policy module file (.pp or .cil; in the image also .pp.bz2)",
        "selinux.modules[2]: '../outside.cil' must be a path in the project (relative) or in the image "
        "(absolute), without '..' segments",
        "selinux.priority: 1000 is not a module priority (1 to 999)",
    ]
    path = write_recipe(
        HEAD + "layers:\n  - {name: slim, remove: ['policycoreutils*']}\n"
        "selinux:\n  modules:\n    - files/selinux/missing.cil\n"
        "    - files/selinux/not-a-package.pp\n    - files/selinux/1st.cil\n"
        "    - files/selinux/nc_site.cil\n    - files/selinux/copy/nc_site.cil\n"
    )
    assert problems(path) == [
        "layers[0].remove: layer 'slim' removes policycoreutils, which selinux: needs "
        "(setsebool and semodule write into the image's policy)",
        "selinux.modules[0]: 'files/selinux/missing.cil' is not a file",
        "selinux.modules[1]: 'files/selinux/not-a-package.pp' is not a policy package semodule can read",
        "selinux.modules[2]: semodule refuses the module name '1st'",
        "selinux.modules[4]: module 'nc_site' is also installed from files/selinux/nc_site.cil",
    ]


def test_an_empty_selinux_section_does_nothing(write_recipe: WriteRecipe) -> None:
    path = write_recipe(HEAD + "selinux: {booleans: {}}\n")
    assert problems(path) == [": the recipe changes nothing in its base"]


def test_a_package_checkmodule_made_is_read_by_its_compiled_in_name() -> None:
    pp = FIXTURES / "files" / "selinux" / "nc_demo.pp"  # source: nc_demo.te beside it
    assert pp_name(pp.read_bytes()) == "nc_demo"
