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
from tests.universe.download_site import FILES, mirror_argument, serve_download_site
from tests.universe.httpserve import QuietHTTPServer
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


def build(
    recipe: str, base: str, mirror: str, tag: str, cwd: Path = ROOT, more: tuple[str, ...] = ()
) -> tuple[int, str, str]:
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
        *more,
        cwd=cwd,
        timeout=900,
    )
    summary = json.loads(done.stdout)["images"] if done.stdout else []
    pushed = (summary[0].get("pinned") or "") if summary else ""
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
    assert pushed.startswith(pushed_tag.rsplit(":", 1)[0] + "@sha256:"), pushed

    out = in_image(
        pushed_tag,
        f"modinfo -k {KVER} -F vermagic nc_demo; cat /usr/lib/modules-load.d/*.conf "
        f"/usr/lib/modprobe.d/nestcustom-*.conf; cat /usr/lib/modules/{KVER}/initramfs.img; "
        "command -v gcc make || echo no-compiler; ls /src /out /usr/lib/nestcustom-kmods 2>&1 || true",
    )
    # Compiled in the builder for the base's kernel, which the build read from the base.
    assert out.startswith(f"{KVER} SMP mod_unload"), out
    assert "nc_demo\noptions nc_demo greeting=hi\n" in out
    assert "driver: nc_demo" in out and "dracut module: ostree" in out
    assert "no-compiler" in out  # the builder's tools stay in the builder
    for gone in ("/src", "/out", "/usr/lib/nestcustom-kmods"):  # nothing of the build is left
        assert f"'{gone}': No such file" in out

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
    # The recipe says rechunk: true: the image pushed and tested is the re-cut one, strace
    # in a chunk of its own.
    assert "rechunk: reading the " in stderr and " chunk(s), " in stderr, stderr
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", pushed_tag).stdout
    assert "nestcustom rechunk: strace.x86_64" in history.splitlines(), history
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


def test_checks_fail_the_build_for_a_dangling_symlink_and_a_missing_file(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    path = recipe(
        scratch,
        "layers:\n  - name: tool\n    run: [[ln, -s, /usr/lib/nothing, /etc/tool.conf]]\n"
        "checks:\n  files: [/etc/promised.conf]\n",
    )
    code, stderr, pushed = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 1
    assert "nestcustom check: /etc/promised.conf does not exist" in stderr
    assert (
        "nestcustom check: /etc/tool.conf -> /usr/lib/nothing: the symlink points nowhere" in stderr
    )
    assert "2 check(s) failed; no image was tagged" in stderr
    assert pushed == "" and not image_exists(pushed_tag)


def test_var_content_fails_the_layer_that_made_it(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    # /usr/local is /var/usrlocal on NestOS: what lands there never reaches a host, and
    # SP2's ostree container commit refuses it in the layer that wrote it.
    path = recipe(
        scratch,
        "layers:\n  - name: tool\n    run:\n      - [mkdir, -p, /var/usrlocal/bin]\n"
        "      - [cp, /usr/bin/true, /usr/local/bin/tool]\n",
    )
    code, stderr, pushed = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 1
    assert "layer tool" in stderr and 'Found file: "var/usrlocal/bin/tool"' in stderr, stderr
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


def test_a_changed_script_reruns_its_step(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    # podman 4.3 keys a RUN's cache on its text only: a script mounted at the same path
    # with new content would reuse the old layer. nestcustom mounts scripts by content.
    script = scratch / "files" / "motd.sh"
    path = recipe(scratch, "layers:\n  - name: motd\n    script: [files/motd.sh]\n")
    for text in ("first", "second"):
        script.write_text(f"#!/bin/sh\necho {text} > /etc/motd\n")
        code, stderr, _ = build(path, *mirrors, pushed_tag, cwd=scratch)
        assert code == 0, stderr
        assert in_image(pushed_tag, "cat /etc/motd") == f"{text}\n"


def test_a_file_tree_links_directories_users_and_units_in_one_layer(
    mirrors: tuple[str, str], pushed_tag: str
) -> None:
    base, mirror = mirrors
    code, stderr, _ = build("recipes/nestos-agent-files.yaml", base, mirror, pushed_tag)
    assert code == 0, stderr
    out = in_image(
        pushed_tag,
        "stat -c '%a %U' /usr/lib/nc-agent/bin/nc-agent /etc/nc-agent/conf.d; "
        "readlink /usr/bin/nc-agent /etc/systemd/system/debug-shell.service; "
        "cat /usr/lib/sysusers.d/nestcustom-nestos-agent-files.conf; "
        "cat /usr/lib/systemd/system/zincati.service.d/10-limits.conf; "
        "test -e /etc/motd || echo motd-gone",
    )
    assert "755 root\n750 root\n" in out  # the tree keeps the script executable
    assert "../lib/nc-agent/bin/nc-agent\n/dev/null\n" in out
    assert "g nc-agent 990\n" in out
    assert 'u nc-agent 990:nc-agent "nc host agent" /var/lib/nc-agent -\n' in out
    assert "LimitNOFILE=65536" in out and "motd-gone" in out
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", pushed_tag).stdout
    assert sum("build.sh files " in line for line in history.splitlines()) == 1  # one layer

    tested = nestcustom("test", "recipes/nestos-agent-files.yaml", "--image", pushed_tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    for line in (
        "PASS  link     /usr/bin/nc-agent -> ../lib/nc-agent/bin/nc-agent (built-in)",
        "PASS  unit     debug-shell.service masked (built-in)",
        "PASS  unit     default.target is multi-user.target (built-in)",
        "PASS  file     /etc/motd does not exist (built-in)",
        "PASS  command  nc-agent --version",
    ):
        assert line in tested.stdout, tested.stdout


def test_keys_before_layers_base_repo_off_and_a_layer_repo_that_leaves_no_trace(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str, rpm_repo_url: str
) -> None:
    (scratch / "files" / "RPM-GPG-KEY-nctest").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    path = recipe(
        scratch,
        "keys: [files/RPM-GPG-KEY-nctest]\n"
        "base-repos: {disable: [everything]}\n"
        "layers:\n  - name: tools\n    install: [strace]\n    repos:\n"
        f"      - {{id: nctest-tools, baseurl: '{rpm_repo_url}', gpgcheck: false,\n"
        "         gpgkey: 'file:///etc/pki/rpm-gpg/RPM-GPG-KEY-nctest'}\n",
    )
    code, stderr, _ = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 0, stderr
    out = in_image(
        pushed_tag,
        "head -1 /etc/pki/rpm-gpg/RPM-GPG-KEY-nctest; ls /etc/yum.repos.d; "
        "grep -A1 -F '[everything]' /etc/yum.repos.d/openEuler.repo; rpm -q strace",
    )
    assert out.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    assert "nestcustom-tools" not in out  # the layer's repo was mounted, never written
    assert "[everything]\nenabled=0\n" in out
    assert "strace-" in out


def test_enabling_a_repo_the_base_does_not_have_fails_the_build(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    path = recipe(scratch, "base-repos: {enable: [nope]}\n")
    code, stderr, pushed = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 1
    assert "nestcustom: repo nope is not in any /etc/yum.repos.d/*.repo of the base" in stderr
    assert pushed == "" and not image_exists(pushed_tag)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(URL, directory) of a plain HTTP server for downloads."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler

    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = QuietHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_downloads_are_verified_placed_and_unpacked(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str, served: tuple[str, Path]
) -> None:
    import hashlib
    import tarfile

    url, root = served
    (root / "nc-tool").write_text("#!/bin/sh\necho nc-tool 2.0\n")
    fonts = root / "fonts"
    fonts.mkdir()
    (fonts / "Sans.ttf").write_bytes(b"not really a font\n")
    with tarfile.open(root / "fonts.tar.gz", "w:gz") as tar:
        tar.add(fonts / "Sans.ttf", arcname="Sans.ttf")

    def sha(name: str) -> str:
        return hashlib.sha256((root / name).read_bytes()).hexdigest()

    path = recipe(
        scratch,
        "downloads:\n"
        f"  - {{url: '{url}/nc-tool', sha256: {sha('nc-tool')}, dest: /usr/bin/nc-tool,"
        " mode: '0755'}\n"
        f"  - {{url: '{url}/fonts.tar.gz', sha256: {sha('fonts.tar.gz')},"
        " dest: /usr/share/fonts/nc, extract: true}\n",
    )
    code, stderr, _ = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 0, stderr
    out = in_image(pushed_tag, "nc-tool; cat /usr/share/fonts/nc/Sans.ttf; ls /tmp")
    assert out == "nc-tool 2.0\nnot really a font\n"

    # A download that is not what the recipe pins fails the build (the same RUN with the
    # same pin is served from the layer cache: what it holds was verified).
    (root / "other").write_text("#!/bin/sh\necho something else\n")
    pinned = sha("nc-tool")
    bad = recipe(
        scratch,
        f"downloads:\n  - {{url: '{url}/other', sha256: {pinned}, dest: /usr/bin/other}}\n",
    )
    code, stderr, pushed = build(bad, *mirrors, pushed_tag + "-2", cwd=scratch)
    assert code == 1
    assert f"nestcustom: {url}/other has sha256 {sha('other')}; the recipe pins {pinned}" in stderr
    assert pushed == "" and not image_exists(pushed_tag + "-2")


def test_site_config_example_edits_os_release_and_ships_the_trust_policy(
    mirrors: tuple[str, str], pushed_tag: str
) -> None:
    base, mirror = mirrors
    code, stderr, _ = build("recipes/nestos-site-config.yaml", base, mirror, pushed_tag)
    assert code == 0, stderr
    out = in_image(pushed_tag, "grep ^VARIANT /etc/os-release")
    assert out == 'VARIANT="Example Corp site"\nVARIANT_ID=examplecorp\n'
    policy = json.loads(in_image(pushed_tag, "cat /etc/containers/policy.json"))
    [requirement] = policy["transports"]["docker"]["registry.example.com/site"]
    assert requirement["type"] == "signedBy" and requirement["keyType"] == "GPGKeys"
    assert requirement["keyPath"] == "/etc/pki/containers/signing-key.pub.asc"
    tested = nestcustom("test", "recipes/nestos-site-config.yaml", "--image", pushed_tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert (
        "PASS  file     /etc/os-release contains 'VARIANT_ID=examplecorp' (built-in)"
        in tested.stdout
    )


def test_a_vendor_repo_file_fetched_by_url_is_verified_and_used(
    mirrors: tuple[str, str],
    scratch: Path,
    pushed_tag: str,
    served: tuple[str, Path],
    rpm_repo_url: str,
) -> None:
    import hashlib

    url, root = served
    (root / "vendor.repo").write_text(
        f"[vendor]\nname=Vendor\nbaseurl={rpm_repo_url}\nenabled=1\ngpgcheck=0\n"
    )
    digest = hashlib.sha256((root / "vendor.repo").read_bytes()).hexdigest()
    path = recipe(
        scratch,
        f"repo-files: [{{url: '{url}/vendor.repo', sha256: {digest}}}]\n"
        "base-repos: {disable: [everything]}\n"
        "layers: [{name: tools, install: [strace]}]\n",
    )
    code, stderr, _ = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 0, stderr
    out = in_image(pushed_tag, "cat /etc/yum.repos.d/vendor.repo; rpm -q strace")
    assert out.startswith("[vendor]\n") and "\nstrace-" in out


def test_a_glob_removes_every_installed_match_and_one_matching_nothing_fails(
    mirrors: tuple[str, str], scratch: Path, pushed_tag: str
) -> None:
    path = recipe(scratch, "layers: [{name: slim, remove: ['zinc*']}]\n")
    code, stderr, _ = build(path, *mirrors, pushed_tag, cwd=scratch)
    assert code == 0, stderr
    assert "package zincati is not installed" in in_image(pushed_tag, "rpm -q zincati || true")
    tested = nestcustom("test", path, "--image", pushed_tag, cwd=scratch)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PASS  package  zinc* absent (built-in)" in tested.stdout

    nothing = recipe(scratch, "layers: [{name: slim, remove: ['nomatch*']}]\n")
    code, stderr, pushed = build(nothing, *mirrors, pushed_tag + "-2", cwd=scratch)
    assert code == 1
    assert "nestcustom: no installed package matches 'nomatch*'" in stderr
    assert pushed == "" and not image_exists(pushed_tag + "-2")


DOWNLOADS_EXAMPLE = "recipes/nestos-downloads.yaml"


def test_the_downloads_example_builds_from_a_mirror_and_passes_its_tests(
    mirrors: tuple[str, str], pushed_tag: str
) -> None:
    with serve_download_site() as site:
        code, stderr, pushed = build(
            DOWNLOADS_EXAMPLE,
            *mirrors,
            pushed_tag,
            more=("--download-mirror", mirror_argument(site)),
        )
    assert code == 0, stderr
    assert pushed.startswith(pushed_tag.rsplit(":", 1)[0] + "@sha256:")
    assert in_image(pushed_tag, "nc-tool --version") == "nc-tool 2.1.0\n"
    tested = nestcustom("test", DOWNLOADS_EXAMPLE, "--image", pushed_tag, cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "FAIL" not in tested.stdout


def test_a_mirror_serving_other_bytes_fails_the_build_and_sets_no_tag(
    mirrors: tuple[str, str], pushed_tag: str, tmp_path: Path
) -> None:
    tampered = tmp_path / "site"
    shutil.copytree(FILES, tampered)
    binary = tampered / "nc-tool" / "2.1.0" / "nc-tool-linux-x86_64"
    binary.write_text("#!/bin/sh\necho not the vendor's nc-tool\n")
    with serve_download_site(tampered) as site:
        code, stderr, pushed = build(
            DOWNLOADS_EXAMPLE,
            *mirrors,
            pushed_tag,
            more=("--download-mirror", mirror_argument(site)),
        )
    assert code == 1
    assert f"{site}nc-tool/2.1.0/nc-tool-linux-x86_64 has sha256 " in stderr
    assert (
        "the recipe pins 361df4e3e2fbff03edba58fdb76dbc2787be17b0cdf76313a6007cdcd921d5d2" in stderr
    )
    assert pushed == "" and not image_exists(pushed_tag)
