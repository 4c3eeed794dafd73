"""SELinux booleans and policy modules built for real: Debian's real policycoreutils
(setsebool, semodule) and reference policy in an SELinux-capable SP2 fixture base whose
policy store is where rpm-ostree's compose puts it (/etc/selinux, store-root=), with
SELinux disabled in the build as in most container builds. Then `nestcustom test`
reads the image's policy store.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT
from tests.image.universe import image_exists, nestcustom, podman
from tests.universe.base.selinux_base import build_selinux_base

pytestmark = pytest.mark.universe

STORE = "/etc/selinux/default"  # Debian's policy type is `default` (NestOS: targeted)


@pytest.fixture(scope="module")
def selinux_base(base_workdir: Path) -> str:
    return build_selinux_base(base_workdir)


@pytest.fixture
def local_tag() -> Iterator[str]:
    reference = f"localhost/nctest/selinux-{uuid.uuid4().hex[:10]}:latest"
    yield reference
    podman("rmi", "-f", reference)


def build(recipe: str, base: str, tag: str, cwd: Path, *more: str) -> tuple[int, str]:
    done = nestcustom("build", recipe, "--base", base, "--tag", tag, *more, cwd=cwd, timeout=900)
    return done.returncode, done.stderr


def in_image(reference: str, script: str) -> str:
    done = podman("run", "--rm", reference, "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_selinux_example_builds_and_passes_nestcustom_test(
    selinux_base: str, local_tag: str
) -> None:
    # --no-cache: the steps' own output is asserted, and an earlier run on this machine
    # (the same recipe on the same reproducible base) leaves them in podman's layer cache.
    code, stderr = build("recipes/nestos-selinux.yaml", selinux_base, local_tag, ROOT, "--no-cache")
    assert code == 0, stderr
    # The helper writes each trace line in one piece: podman hands a RUN's output on in
    # the pieces written, so a line written in parts would show as several.
    assert "+ semodule -N -X 400 -i /run/nestcustom/selinux/" in stderr
    assert "+ setsebool -P -N httpd_can_network_connect=1 nc_site_relay=1" in stderr
    out = in_image(
        local_tag,
        f"grep -v '^#' {STORE}/active/booleans.local; ls {STORE}/active/modules/400/nc_site; "
        f"ls {STORE}; find /var ! -type d | head -5",
    )
    assert "httpd_can_network_connect=1\nnc_site_relay=1\n" in out
    assert "cil\n" in out  # the module is in the store (what semodule -l lists)
    assert "semanage.trans.LOCK" not in out and "semanage.read.LOCK" not in out
    assert "/var/" not in out  # nothing of the step landed where a host drops it

    tested = nestcustom("test", "recipes/nestos-selinux.yaml", "--image", local_tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PASS  selinux  boolean nc_site_relay on (persistent) (built-in)" in tested.stdout
    assert "PASS  selinux  module nc_site installed at priority 400 (built-in)" in tested.stdout
    assert "PASS  command  semodule -l exit 0" in tested.stdout


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "recipes").mkdir()
    shutil.copytree(FIXTURES / "files" / "selinux", tmp_path / "files" / "selinux")
    return tmp_path


def write(project: Path, body: str) -> str:
    name = f"s{uuid.uuid4().hex[:8]}"
    (project / "recipes" / f"{name}.yaml").write_text(
        f"name: {name}\n"
        "base: {image: hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP2.20230922.0-x86_64}\n" + body
    )
    return f"recipes/{name}.yaml"


def test_a_compiled_module_its_boolean_and_what_test_says_when_they_are_missing(
    selinux_base: str, scratch: Path, local_tag: str
) -> None:
    recipe = write(
        scratch,
        "selinux:\n  modules: [files/selinux/nc_demo.pp]\n  priority: 500\n"
        "  booleans: {nc_demo_read: true, virt_use_nfs: off}\n",
    )
    code, stderr = build(recipe, selinux_base, local_tag, scratch)
    assert code == 0, stderr
    out = in_image(local_tag, f"semodule -lfull | grep nc_demo; cat {STORE}/active/booleans.local")
    assert "500 nc_demo" in out  # named by the name compiled into the package
    assert "nc_demo_read=1" in out and "virt_use_nfs=0" in out

    # The same checks against the base, where neither is there: each fails, saying why.
    tested = nestcustom("test", recipe, "--image", selinux_base, cwd=scratch)
    assert tested.returncode == 1, tested.stdout + tested.stderr
    assert (
        f"FAIL  selinux  module nc_demo installed at priority 500 (built-in): "
        f"not in the store ({STORE}/active/modules/500/nc_demo)" in tested.stdout
    )
    assert "FAIL  selinux  boolean nc_demo_read on (persistent) (built-in): no " in tested.stdout


def test_an_unknown_boolean_or_a_base_without_selinux_fails_the_build_and_sets_no_tag(
    selinux_base: str, nestos_sp2_image: str, scratch: Path, local_tag: str
) -> None:
    recipe = write(scratch, "selinux: {booleans: {nc_no_such_boolean: true}}\n")
    code, stderr = build(recipe, selinux_base, local_tag, scratch)
    assert code == 1
    assert "Boolean nc_no_such_boolean is not defined" in stderr  # setsebool's own words
    assert "nestcustom: selinux: setsebool could not set the booleans" in stderr
    assert not image_exists(local_tag)

    code, stderr = build(recipe, nestos_sp2_image, local_tag, scratch)
    assert code == 1
    assert "nestcustom: selinux: the image has no setsebool: install policycoreutils" in stderr
    assert not image_exists(local_tag)


def test_a_module_a_package_put_in_the_image_is_installed_where_the_layer_says(
    selinux_base: str, scratch: Path, local_tag: str
) -> None:
    """A policy package in the image (as a package ships /usr/share/selinux/packages/X.pp):
    a layer's files step puts it there, its selinux step installs it, in that order."""
    recipe = write(
        scratch,
        "layers:\n  - name: policy\n    steps:\n"
        "      - files: [{src: files/selinux/nc_demo.pp, dest: /usr/share/selinux/packages/nc_demo.pp}]\n"
        "      - selinux: {modules: [/usr/share/selinux/packages/nc_demo.pp], booleans: {nc_demo_read: true}}\n",
    )
    code, stderr = build(recipe, selinux_base, local_tag, scratch)
    assert code == 0, stderr
    assert "+ semodule -N -X 400 -i /usr/share/selinux/packages/nc_demo.pp" in stderr
    out = in_image(local_tag, f"semodule -lfull | grep nc_demo; cat {STORE}/active/booleans.local")
    assert "400 nc_demo" in out and "nc_demo_read=1" in out
    tested = nestcustom("test", recipe, "--image", local_tag, cwd=scratch)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PASS  selinux  module nc_demo installed at priority 400 (built-in)" in tested.stdout

    # Not in the image (no earlier step or package put it there): the build says so.
    missing = write(scratch, "selinux: {modules: [/usr/share/selinux/packages/nc_none.pp]}\n")
    code, stderr = build(missing, selinux_base, local_tag + "-2", scratch)
    assert code == 1
    assert (
        "nestcustom: selinux: the image has no /usr/share/selinux/packages/nc_none.pp: "
        "install the package that ships it in an earlier layer" in stderr
    )
    assert not image_exists(local_tag + "-2")
