"""Real customizations built for real: commands and scripts, builder stages, build-time
values, kernel modules and the initramfs, and checks that fail the build.

The examples in recipes/ are built as a user would (their base and builder read
from mirrors in the local registry) and then tested with `nestcustom test`; the
failure cases are small recipes in a scratch project.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.image.universe import image_exists, nestcustom, podman
from tests.universe.base.build import VARIANTS, machine_arch
from tests.universe.registry import Registry
from tests.universe.session import publish_mirror

pytestmark = pytest.mark.universe

KVER = f"{VARIANTS['sp2'].kernel}.{VARIANTS['sp2'].dist}.{machine_arch()}"


@pytest.fixture(scope="module")
def mirrors(
    nestos_sp2_image: str, rpm_repo_url: str, registry: Registry, kmod_builder_image: str
) -> tuple[str, str]:
    """(the base's mirror, --mirror for hub.oepkgs.net), the builder published under it."""
    base = publish_mirror(nestos_sp2_image, rpm_repo_url, registry)
    builder = f"{registry.host}/nestos/kmod-builder:22.03-LTS-SP2-x86_64"  # as the recipe names it
    assert podman("tag", kmod_builder_image, builder).returncode == 0
    pushed = podman("push", "-q", "--tls-verify=false", builder)
    assert pushed.returncode == 0, pushed.stderr
    return base, f"hub.oepkgs.net={registry.host}"


@pytest.fixture
def pushed_tag(registry: Registry) -> Iterator[str]:
    reference = f"{registry.host}/nctest/{uuid.uuid4().hex[:10]}:latest"
    yield reference
    podman("rmi", "-f", reference)


def build(recipe: str, base: str, mirror: str, tag: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    """(exit code, stderr, the pushed REF@digest) of building and pushing `recipe`."""
    done = nestcustom(
        "build",
        recipe,
        "--base",
        base,
        "--mirror",
        mirror,
        "--tag",
        tag,
        "--push",
        "--no-tls-verify",
        "--json",
        cwd=cwd,
        timeout=900,
    )
    summary = json.loads(done.stdout or "[]")
    pushed = summary[0].get("pushed") or "" if summary else ""
    return done.returncode, done.stderr, pushed


def in_image(reference: str, script: str) -> str:
    done = podman("run", "--rm", reference, "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kernel_module_built_in_a_builder_stage_reaches_the_image(
    mirrors: tuple[str, str], pushed_tag: str
) -> None:
    base, mirror = mirrors
    code, stderr, pushed = build("recipes/nestos-kmod.yaml", base, mirror, pushed_tag)
    assert code == 0, stderr
    # Compiled in the builder, for the base's kernel, read from the base in the build.
    assert f"make: Entering directory '/usr/src/kernels/{KVER}" in stderr
    assert "LD [M]  /src/nc_demo/nc_demo.ko" in stderr
    assert pushed.startswith(pushed_tag.rsplit(":", 1)[0] + "@sha256:"), pushed

    out = in_image(
        pushed_tag,
        f"modinfo -k {KVER} -F vermagic nc_demo; cat /usr/lib/modules-load.d/*.conf "
        f"/usr/lib/modprobe.d/nestcustom-*.conf; cat /usr/lib/modules/{KVER}/initramfs.img; "
        "command -v gcc make || echo no-compiler; ls /src /out 2>&1 || true",
    )
    assert out.startswith(f"{KVER} SMP mod_unload"), out
    assert "nc_demo\noptions nc_demo greeting=hi\n" in out
    assert "driver: nc_demo" in out and "dracut module: ostree" in out
    assert "no-compiler" in out  # the builder's tools stay in the builder
    assert "/src: No such file" in out and "/out: No such file" in out

    tested = nestcustom("test", "recipes/nestos-kmod.yaml", "--image", pushed_tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert f"PASS  module   nc_demo installed for kernel {KVER} (built-in)" in tested.stdout
    assert f"PASS  command  modinfo -k {KVER} -F description nc_demo" in tested.stdout


def test_commands_scripts_values_env_units_and_checks(
    mirrors: tuple[str, str], pushed_tag: str
) -> None:
    base, mirror = mirrors
    code, stderr, _ = build("recipes/nestos-ops.yaml", base, mirror, pushed_tag)
    assert code == 0, stderr
    banner = in_image(pushed_tag, "cat /etc/issue.d/nestcustom-ops.issue")
    assert banner == f"NestOS 22.03-LTS-SP2, kernel {KVER}, site lab-1 (built by nestcustom)\n"
    enabled = in_image(pushed_tag, "ls /etc/systemd/system/multi-user.target.wants/")
    assert "ops-report.service" in enabled.split()

    tested = nestcustom("test", "recipes/nestos-ops.yaml", "--image", pushed_tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert f"grep -F 'kernel {KVER}' /etc/issue.d/nestcustom-ops.issue" in tested.stdout


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A project of its own: recipes/ and files/."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "files").mkdir()
    return tmp_path


def recipe(project: Path, body: str) -> str:
    name = f"c{uuid.uuid4().hex[:8]}"
    (project / "recipes" / f"{name}.yaml").write_text(
        f"name: {name}\ndescription: failure case\n"
        "base: {image: hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP2.20230922.0-x86_64}\n" + body
    )
    return f"recipes/{name}.yaml"


def test_a_failing_script_fails_the_build_naming_its_layer_and_sets_no_tag(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    (scratch / "files" / "setup.sh").write_text("#!/bin/sh\necho 'setting up'\nexit 3\n")
    path = recipe(scratch, "layers:\n  - name: setup\n    script: [files/setup.sh]\n")
    code, stderr, pushed = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 1
    assert "setting up" in stderr
    assert "layer setup" in stderr and "exit status 3" in stderr, stderr
    assert pushed == "" and not image_exists(pushed_tag)


def test_checks_fail_the_build_for_var_content_and_a_missing_file(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    # /usr/local is /var/usrlocal on NestOS: what lands there never reaches a host.
    path = recipe(
        scratch,
        "layers:\n  - name: tool\n    run: [[cp, /usr/bin/true, /usr/local/bin-tool]]\n"
        "checks:\n  files: [/etc/promised.conf]\n",
    )
    code, stderr, pushed = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 1
    assert "nestcustom check: /etc/promised.conf does not exist" in stderr
    assert "nestcustom check: /var/usrlocal/bin-tool: a NestOS host drops /var content" in stderr
    assert "2 check(s) failed; no image was tagged" in stderr
    assert pushed == "" and not image_exists(pushed_tag)


def test_a_kernel_module_whose_dependency_is_missing_fails_the_check(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    source = scratch / "files" / "kmod"
    source.mkdir()
    demo = (ROOT / "files" / "kmod" / "nc_demo.c").read_text()
    (source / "nc_needy.c").write_text(demo + 'MODULE_INFO(depends, "nc_missing");\n')
    (source / "Kbuild").write_text("obj-m := nc_needy.o\n")
    shutil.copy(ROOT / "files" / "kmod" / "build.sh", source / "build.sh")
    path = recipe(
        scratch,
        "stages:\n  - name: kmod\n"
        "    from: hub.oepkgs.net/nestos/kmod-builder:22.03-LTS-SP2-x86_64\n"
        "    packages: apt-get\n"
        "    files:\n"
        "      - {src: files/kmod/nc_needy.c, dest: /src/nc_needy.c}\n"
        "      - {src: files/kmod/Kbuild, dest: /src/Kbuild}\n"
        "    layers:\n      - name: compile\n"
        '        script: [{path: files/kmod/build.sh, args: ["{{kernel}}", /src]}]\n'
        "kernel-modules:\n  - {name: nc_needy, from: kmod, src: /out/nc_needy.ko}\n",
    )
    code, stderr, pushed = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 1
    assert f"nc_needy.ko needs module nc_missing, which kernel {KVER} does not have" in stderr, (
        stderr
    )
    assert pushed == "" and not image_exists(pushed_tag)
