"""The recipe language's newer keys built for real on the universe: RPM files from a
builder stage and from an image installed in one transaction, a layer's files and steps
in the order written (dracut after its config), kernel arguments in the image, /opt,
one user's units with linger, a gzip-compressed download; and what went wrong before
(a dracut config shipped with the top-level files: arrives after dracut ran).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.image.universe import image_exists, labels_of, nestcustom, podman
from tests.universe.base.build import VARIANTS, machine_arch
from tests.universe.download_site import mirror_argument, serve_download_site
from tests.universe.registry import Registry
from tests.universe.rpmrepo import RpmRepo
from tests.universe.session import publish_mirror

pytestmark = pytest.mark.universe

KVER = f"{VARIANTS['sp2'].kernel}.{VARIANTS['sp2'].dist}.{machine_arch()}"
BASE_TAG = "hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP2.20230922.0-x86_64"


@pytest.fixture(scope="module")
def mirrors(
    nestos_sp2_image: str, rpm_repo_url: str, registry: Registry, kmod_builder_image: str
) -> tuple[str, str]:
    """(the base's mirror, --mirror for hub.oepkgs.net), the builder published under it."""
    base = publish_mirror(nestos_sp2_image, rpm_repo_url, registry)
    builder = f"{registry.host}/nestos/kmod-builder:22.03-LTS-SP2-x86_64"
    assert podman("tag", kmod_builder_image, builder).returncode == 0
    pushed = podman("push", "-q", "--tls-verify=false", builder)
    assert pushed.returncode == 0, pushed.stderr
    return base, f"hub.oepkgs.net={registry.host}"


@pytest.fixture
def tag() -> Iterator[str]:
    reference = f"localhost/nctest/lang-{uuid.uuid4().hex[:10]}:latest"
    yield reference
    podman("rmi", "-f", reference)


def build(
    recipe: str, mirrors: tuple[str, str], tag: str, cwd: Path = ROOT, more: tuple[str, ...] = ()
) -> tuple[int, str]:
    base, mirror = mirrors
    done = nestcustom(
        "build", recipe, "--base", base, "--mirror", mirror, "--tag", tag, *more,
        cwd=cwd, timeout=1200,
    )  # fmt: skip
    return done.returncode, done.stderr


def in_image(reference: str, script: str) -> str:
    done = podman("run", "--rm", reference, "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_kmod_rpm_from_a_stage_is_installed_with_its_dracut_config_in_place(
    mirrors: tuple[str, str], tag: str
) -> None:
    code, stderr = build("recipes/nestos-kmod-rpm.yaml", mirrors, tag)
    assert code == 0, stderr
    out = in_image(
        tag,
        "rpm -q kmod-nc-demo strace; cat /usr/share/nestcustom/rpms/nc-demo.list; "
        f"cat /usr/lib/modules/{KVER}/initramfs.img; "
        "cat /usr/lib/bootc/kargs.d/nestcustom-nestos-kmod-rpm.toml; "
        "find / -xdev -name 'kmod-nc-demo*.rpm' 2>/dev/null; ls /run/nestcustom 2>&1 || true",
    )
    assert "kmod-nc-demo-1.0-1.x86_64\n" in out and "\nstrace-" in out
    assert " kmod-nc-demo-1.0-1.x86_64 0/kmod-nc-demo-1.0-1.x86_64.rpm\n" in out
    # dracut ran in the layer after the config and the module came: both are in it.
    assert "config: /etc/dracut.conf.d/nc-demo.conf\n" in out
    assert "dracut module: nc-demo\n" in out and "driver: nc_demo\n" in out
    assert 'kargs = ["nc_demo.greeting=hello"]\nmatch-architectures = ["x86_64"]\n' in out
    assert ".rpm\n" not in out.split("match-architectures")[1]  # no RPM file in the image
    label = json.loads(labels_of(tag)["io.nestcustom.kernel-arguments"])
    assert label["append"] == ["nc_demo.greeting=hello"]

    tested = nestcustom("test", "recipes/nestos-kmod-rpm.yaml", "--image", tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert (
        "PASS  package  kmod-nc-demo-1.0-1.x86_64 installed from kmod-rpm (layer nc-demo) "
        "(built-in)" in tested.stdout
    ), tested.stdout
    assert "PASS  command  cat /usr/lib/modules/" in tested.stdout


def test_the_layer_follows_its_rpm_files_and_sees_them_from_a_cached_stage(
    mirrors: tuple[str, str], tmp_path: Path
) -> None:
    """podman 4.3 keys a RUN on its text (a --mount from a stage included, buildah#4522) and
    mounts a cached stage as it was before its cached steps (podman#16281): a changed RPM
    must re-run the layer, and a layer that re-runs over a cached stage must see the RPMs."""
    project = tmp_path / "p"
    (project / "recipes").mkdir(parents=True)
    shutil.copytree(ROOT / "files", project / "files")
    recipe = (ROOT / "recipes" / "nestos-kmod-rpm.yaml").read_text()
    recipe = recipe.replace("tests:", "x-unused:").split("x-unused:")[0]
    path = project / "recipes" / "kmod.yaml"
    tag = f"localhost/nctest/lang-{uuid.uuid4().hex[:10]}:latest"
    try:
        path.write_text(recipe)
        assert build("recipes/kmod.yaml", mirrors, tag, project)[0] == 0
        # Only the layer's own text changes: it re-runs; the stages come from the cache.
        path.write_text(recipe.replace("      - strace\n", "      - strace\n      - jq\n"))
        code, stderr = build("recipes/kmod.yaml", mirrors, tag, project)
        assert code == 0, stderr
        assert in_image(tag, "rpm -q kmod-nc-demo jq | head -1") == "kmod-nc-demo-1.0-1.x86_64\n"
        # Only the RPM changes (its release): the layer's text does not, and still re-runs.
        spec = project / "files" / "kmod-rpm" / "kmod-nc-demo.spec"
        spec.write_text(spec.read_text().replace("Release:        1", "Release:        2"))
        code, stderr = build("recipes/kmod.yaml", mirrors, tag, project)
        assert code == 0, stderr
        assert in_image(tag, "rpm -q kmod-nc-demo") == "kmod-nc-demo-1.0-2.x86_64\n"
    finally:
        podman("rmi", "-f", tag)


def test_rpm_files_carried_in_an_image_join_the_layers_transaction(
    mirrors: tuple[str, str], registry: Registry, rpm_repo: RpmRepo, tmp_path: Path, tag: str
) -> None:
    """As uBlue's akmods images carry RPMs: an image FROM scratch with /rpms/*.rpm."""
    carrier = tmp_path / "carrier"
    (carrier / "rpms").mkdir(parents=True)
    for rpm in rpm_repo.extra_path.glob("nc-hello-2.0-*.rpm"):
        shutil.copy(rpm, carrier / "rpms")
    (carrier / "Containerfile").write_text("FROM scratch\nCOPY rpms/ /rpms/\n")
    image = f"{registry.host}/nctest/carrier-{uuid.uuid4().hex[:8]}:1"
    assert podman("build", "-q", "-t", image, str(carrier)).returncode == 0
    assert podman("push", "-q", "--tls-verify=false", image).returncode == 0
    project = tmp_path / "p"
    (project / "recipes").mkdir(parents=True)
    (project / "recipes" / "r.yaml").write_text(
        f"name: r\nbase: {{image: {BASE_TAG}}}\n"
        f"layers: [{{name: hello, install: [jq, {{from: '{image}', path: /rpms/*.rpm}}]}}]\n"
        "tests: {packages: {present: ['nc-hello = 2.0', nc-libgreet, jq]}}\n"
    )
    code, stderr = build("recipes/r.yaml", mirrors, tag, project)
    assert code == 0, stderr
    assert in_image(tag, "nc-hello") == "hello from nc-hello 2.0\n"  # its dependency came too
    tested = nestcustom("test", "recipes/r.yaml", "--image", tag, cwd=project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert f"installed from {image} (layer hello) (built-in)" in tested.stdout
    podman("rmi", "-f", image)


def test_a_path_matching_no_rpm_fails_the_build_and_sets_no_tag(
    mirrors: tuple[str, str], tmp_path: Path, tag: str
) -> None:
    project = tmp_path / "p"
    (project / "recipes").mkdir(parents=True)
    (project / "recipes" / "r.yaml").write_text(
        f"name: r\nbase: {{image: {BASE_TAG}}}\n"
        "stages: [{name: empty, from: 'hub.oepkgs.net/nestos/kmod-builder:22.03-LTS-SP2-x86_64',"
        " layers: [{name: out, run: [[mkdir, -p, /out]]}]}]\n"
        "layers: [{name: x, install: [{from: empty, path: /out/*.rpm}]}]\n"
    )
    code, stderr = build("recipes/r.yaml", mirrors, tag, project)
    assert code == 1
    assert "stage nestcustom-rpms-0 rpms empty:/out/*.rpm" in stderr, stderr
    assert not image_exists(tag)


def test_a_dracut_config_in_the_top_level_files_misses_the_initramfs_and_is_warned(
    mirrors: tuple[str, str], tmp_path: Path, tag: str
) -> None:
    """What recipes did before steps:, and still may: validate warns, and the image is as
    the warning says (dracut ran before the config came)."""
    project = tmp_path / "p"
    (project / "recipes").mkdir(parents=True)
    (project / "files").mkdir()
    (project / "files" / "crypt.conf").write_text('add_dracutmodules+=" crypt "\n')
    (project / "recipes" / "r.yaml").write_text(
        f"name: r\nbase: {{image: {BASE_TAG}}}\n"
        "files: [{src: files/crypt.conf, dest: /etc/dracut.conf.d/crypt.conf}]\n"
        "initramfs: {regenerate: true}\n"
    )
    checked = nestcustom("validate", "recipes/r.yaml", cwd=project)
    assert checked.returncode == 0
    assert "/etc/dracut.conf.d/crypt.conf is written after dracut ran" in checked.stderr
    code, stderr = build("recipes/r.yaml", mirrors, tag, project)
    assert code == 0, stderr
    assert "dracut module: crypt" not in in_image(tag, f"cat /usr/lib/modules/{KVER}/initramfs.img")


def test_the_user_tools_example_builds_and_passes_its_tests(
    mirrors: tuple[str, str], tag: str
) -> None:
    with serve_download_site() as site:
        code, stderr = build(
            "recipes/nestos-user-tools.yaml",
            mirrors,
            tag,
            more=("--download-mirror", mirror_argument(site)),
        )
    assert code == 0, stderr
    assert "/opt/nc-optapp moved to /usr/lib/opt/nc-optapp, linked back at boot" in stderr
    out = in_image(
        tag,
        "cat /usr/lib/tmpfiles.d/nestcustom-opt.conf "
        "/usr/lib/tmpfiles.d/nestcustom-nestos-user-tools.conf "
        "/usr/lib/systemd/user/nc-sync.timer.d/50-nestcustom-user.conf; "
        "readlink /etc/systemd/user/timers.target.wants/nc-sync.timer; "
        "cat /usr/lib/opt/nc-site/README; test -e /var/opt || echo no-var-opt; rpm -q nc-optapp; "
        # what tmpfiles does on a host at boot (/var/opt first): /opt/nc-optapp is there again
        "systemd-tmpfiles --create /usr/lib/tmpfiles.d/rpm-ostree-0-integration.conf "
        "/usr/lib/tmpfiles.d/nestcustom-opt.conf && /opt/nc-optapp/bin/tool",
    )
    assert "L /opt/nc-optapp - - - - ../../usr/lib/opt/nc-optapp\n" in out
    assert "L /opt/nc-site - - - - ../../usr/lib/opt/nc-site\n" in out
    assert "f /var/lib/systemd/linger/core 0644 root root -\n" in out
    assert "[Unit]\nConditionUser=|core\n" in out
    assert "/usr/lib/systemd/user/nc-sync.timer\n" in out
    assert "nc-site: files a vendor expects under /opt/nc-site" in out
    assert "no-var-opt\nnc-optapp-1.0-1.noarch\nnc-optapp tool 1.0\n" in out
    tested = nestcustom("test", "recipes/nestos-user-tools.yaml", "--image", tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PASS  unit     nc-sync.timer enabled for core's manager (built-in)" in tested.stdout
