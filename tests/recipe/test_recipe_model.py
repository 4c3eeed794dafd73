"""Every key of the recipe language lands in the Recipe the later stages read: a recipe
that writes each one loads into exactly the model below, and one that writes none gets
the documented defaults (README's reference)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import (
    Base,
    BuildChecks,
    CommandCheck,
    Directory,
    Download,
    Edit,
    FileCheck,
    FileSpec,
    Flavor,
    Group,
    Initramfs,
    KernelModule,
    Layer,
    Recipe,
    Repo,
    RpmOstreeVersion,
    Script,
    Selinux,
    SelinuxModule,
    Signing,
    SigningScope,
    Stage,
    Swap,
    Symlink,
    Units,
    User,
)
from nestcustom.recipe.model import (
    Tests as RecipeTests,
)
from tests.conftest import BASE

SHA = "a" * 64
SHA2 = "b" * 64

EVERYTHING = f"""\
name: every-key
description: every key of the language
arch: x86_64
base:
  image: {BASE}
  digest: sha256:{"c" * 64}
  rpm-ostree: "2022.17"
repos:
  - id: tools
    name: Tools
    baseurl: https://repo.example.com/tools/$basearch/
    gpgcheck: true
    repo_gpgcheck: true
    gpgkey: file:///etc/pki/rpm-gpg/tools.asc
    enabled: false
  - id: meta
    metalink: https://mirrors.example.com/metalink?repo=x
  - id: list
    mirrorlist: https://mirrors.example.com/list
  - copr: "@ops/agent"
    chroot: openeuler-22.03
  - copr: me/thing
    chroot: fedora-39
    copr-instance: https://copr.fedorainfracloud.org/
keys: [files/tools.asc]
repo-files:
  - {{url: "https://vendor.example.com/yum/vendor.repo", sha256: "{SHA}"}}
base-repos: {{enable: [update], disable: [everything, EPOL]}}
stages:
  - name: kmod-build
    from: hub.oepkgs.net/nestos/kmod-builder:22.03-LTS-SP2-x86_64
    packages: apt-get
    files:
      - {{src: files/kmod/nc_demo.c, dest: /src/nc_demo.c}}
      - {{src: /etc/hosts, dest: /src/hosts, from: hub.oepkgs.net/other:1}}
    layers:
      - name: compile
        description: builds it
        install: [gcc]
        run: [[make, -C, /src]]
        env: {{CC: gcc}}
  - name: plain
    from: hub.oepkgs.net/nestos/other:1
layers:
  - name: tools
    description: the tools
    install: [strace, "jq >= 1.6"]
    remove: [nano]
    replace: ["https://example.com/x-1.0-1.x86_64.rpm"]
    swap:
      - {{remove: vim-minimal, install: [vim-enhanced, vim-common]}}
      - {{remove: [a, b], install: c}}
    run: [[systemctl, enable, agent.service], ["true"]]
    script:
      - files/ops/setup.sh
      - {{path: files/ops/setup.sh, args: ["{{{{arch}}}}", two]}}
    env: {{MODE: prod, LEVEL: "2"}}
    repos:
      - {{id: layer-only, baseurl: "https://example.com/l/", gpgcheck: false}}
  - name: more
    replace-from: {{repo: tools, packages: [kernel, kernel-core]}}
kernel-modules:
  - {{name: nc_demo, from: kmod-build, src: /out/nc_demo.ko, load: false, options: "a=1"}}
  - {{name: nc_file, src: files/kmod/nc_file.ko}}
  - {{name: nc_rpm}}
initramfs: {{regenerate: true, drivers: [nc_demo]}}
files:
  - {{src: files/motd, dest: /etc/motd, mode: "0640", owner: "ncsvc:ncsvc"}}
  - {{src: files/tree, dest: "/usr/share/{{{{recipe.name}}}}/tree"}}
  - {{src: /out/tool, dest: /usr/bin/tool, mode: "755", from: kmod-build}}
symlinks: [{{path: /etc/current, target: ../usr/share/x}}]
directories: [{{path: /etc/agent.d, mode: "0700"}}, {{path: /usr/share/empty}}]
remove-files: [/etc/issue, /usr/share/doc/nano]
downloads:
  - {{url: "https://example.com/tool", sha256: "{SHA}", dest: /usr/bin/tool2, mode: "0755"}}
  - {{url: "https://example.com/a.tar.gz", sha256: "{SHA2}", dest: /usr/lib/a, extract: true}}
edits:
  - {{file: /etc/dnf/dnf.conf, section: main, set: {{install_weak_deps: "False", x: "1"}}}}
  - {{file: /etc/os-release, set: {{VARIANT: site}}}}
systemd:
  enable: [agent, chronyd.timer]
  disable: [sshd]
  mask: [debug-shell]
  unmask: [getty@tty1.service]
  default-target: multi-user.target
  preset: [fstrim.timer]
  user: {{enable: [pipewire.socket], disable: [tracker]}}
  dropins:
    - {{unit: agent, src: files/agent-limits.conf}}
    - {{unit: chronyd.timer, src: files/agent-limits.conf, name: 50-x.conf}}
users:
  - {{name: ncsvc, uid: 990, group: ncsvc, description: the agent, home: /var/lib/ncsvc, shell: /sbin/nologin}}
  - {{name: plain}}
groups: [{{name: ncsvc, gid: 990, members: [plain]}}, {{name: empty}}]
labels: {{org.example.team: ops, a.first: "1"}}
signing:
  default: reject
  scopes:
    - {{scope: registry.example.com/ops, key: files/tools.asc, lookaside: "https://sigs.example.com/"}}
    - {{scope: registry.example.com/edge, key: files/cosign.pub, type: sigstore}}
selinux:
  priority: 300
  modules: [files/selinux/agent.cil]
  booleans: {{httpd_can_network_connect: true, deny_ptrace: false}}
checks:
  host-rules: false
  packages: [strace]
  files: [/etc/motd]
  commands: [[strace, -V]]
tests:
  packages: {{present: [strace], absent: [nano]}}
  files:
    - {{path: /etc/motd, mode: "0640", contains: hello}}
    - {{path: /etc/issue, exists: false}}
  commands:
    - {{run: [strace, -V], exit: 0, stdout: strace, timeout: 5}}
    - {{run: ["false"], exit: 1}}
  units: {{enabled: [agent], disabled: [sshd.service]}}
"""


def project(root: Path) -> Path:
    files = {
        "files/tools.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        "files/cosign.pub": "-----BEGIN PUBLIC KEY-----\n",
        "files/kmod/nc_demo.c": "int x;\n",
        "files/kmod/nc_file.ko": "ko\n",
        "files/ops/setup.sh": "#!/usr/bin/env bash\necho hi\n",
        "files/motd": "hello\n",
        "files/tree/a.txt": "a\n",
        "files/agent-limits.conf": "[Service]\nLimitNOFILE=65536\n",
        "files/selinux/agent.cil": "(type agent_t)\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "recipes").mkdir()
    (root / "recipes/every-key.yaml").write_text(EVERYTHING)
    return root / "recipes/every-key.yaml"


def sha(root: Path, name: str) -> str:
    return hashlib.sha256((root / name).read_bytes()).hexdigest()


def test_every_key_lands_in_the_model(tmp_path: Path) -> None:
    path = project(tmp_path)
    loaded = load_recipe(path, tmp_path)
    key = FileSpec(
        "files/tools.asc", "/etc/pki/rpm-gpg/tools.asc", "0644", sha(tmp_path, "files/tools.asc")
    )
    setup = Script(
        "files/ops/setup.sh", (), ("/usr/bin/env", "bash"), sha(tmp_path, "files/ops/setup.sh")
    )
    limits = sha(tmp_path, "files/agent-limits.conf")
    eur = "https://eur.openeuler.openatom.cn/results/@ops/agent"
    fedora = "https://copr.fedorainfracloud.org/results/me/thing"
    expected = Recipe(
        path="recipes/every-key.yaml",
        name="every-key",
        description="every key of the language",
        arch="x86_64",
        base=Base(BASE, "sha256:" + "c" * 64, Flavor.NESTOS, RpmOstreeVersion(2022, 17)),
        repos=(
            Repo("tools", "Tools", "https://repo.example.com/tools/$basearch/", None, None, True,
                 "file:///etc/pki/rpm-gpg/tools.asc", False, True),
            Repo("meta", metalink="https://mirrors.example.com/metalink?repo=x"),
            Repo("list", mirrorlist="https://mirrors.example.com/list"),
            Repo("copr:eur.openeuler.openatom.cn:group_ops:agent",
                 baseurl=f"{eur}/openeuler-22.03-$basearch/", gpgkey=f"{eur}/pubkey.gpg"),
            Repo("copr:copr.fedorainfracloud.org:me:thing",
                 baseurl=f"{fedora}/fedora-39-$basearch/", gpgkey=f"{fedora}/pubkey.gpg"),
        ),
        keys=(key,),
        repo_files=(Download("https://vendor.example.com/yum/vendor.repo", SHA, "/etc/yum.repos.d/vendor.repo"),),
        base_repos_enable=("update",),
        base_repos_disable=("everything", "EPOL"),
        stages=(
            Stage(
                "kmod-build",
                "hub.oepkgs.net/nestos/kmod-builder:22.03-LTS-SP2-x86_64",
                "apt-get",
                (
                    FileSpec("files/kmod/nc_demo.c", "/src/nc_demo.c", "0644",
                             sha(tmp_path, "files/kmod/nc_demo.c")),
                    FileSpec("/etc/hosts", "/src/hosts", "0644", "", "hub.oepkgs.net/other:1"),
                ),
                (Layer("compile", "builds it", install=("gcc",), run=(("make", "-C", "/src"),),
                       env=(("CC", "gcc"),)),),
            ),
            Stage("plain", "hub.oepkgs.net/nestos/other:1"),
        ),
        layers=(
            Layer(
                "tools",
                "the tools",
                install=("strace", "jq >= 1.6"),
                remove=("nano",),
                replace=("https://example.com/x-1.0-1.x86_64.rpm",),
                swap=(Swap(("vim-minimal",), ("vim-enhanced", "vim-common")), Swap(("a", "b"), ("c",))),
                run=(("systemctl", "enable", "agent.service"), ("true",)),
                scripts=(setup, Script(setup.path, ("{{arch}}", "two"), setup.interpreter, setup.sha256)),
                env=(("MODE", "prod"), ("LEVEL", "2")),
                repos=(Repo("layer-only", baseurl="https://example.com/l/", gpgcheck=False),),
            ),
            Layer("more", replace_from=("tools", ("kernel", "kernel-core"))),
        ),
        kernel_modules=(
            KernelModule("nc_demo", "kmod-build", "/out/nc_demo.ko", False, "a=1"),
            KernelModule("nc_file", None, "files/kmod/nc_file.ko", True, None,
                         sha(tmp_path, "files/kmod/nc_file.ko")),
            KernelModule("nc_rpm"),
        ),
        initramfs=Initramfs(True, ("nc_demo",)),
        files=(
            FileSpec("files/motd", "/etc/motd", "0640", sha(tmp_path, "files/motd"), None, "ncsvc:ncsvc"),
            FileSpec("files/tree", "/usr/share/every-key/tree", "0644",
                     loaded.recipe.files[1].sha256, None, None, True),
            FileSpec("/out/tool", "/usr/bin/tool", "0755", "", "kmod-build"),
        ),
        symlinks=(Symlink("/etc/current", "../usr/share/x"),),
        directories=(Directory("/etc/agent.d", "0700"), Directory("/usr/share/empty", "0755")),
        removals=("/etc/issue", "/usr/share/doc/nano"),
        downloads=(
            Download("https://example.com/tool", SHA, "/usr/bin/tool2", "0755", False),
            Download("https://example.com/a.tar.gz", SHA2, "/usr/lib/a", "0644", True),
        ),
        edits=(
            Edit("/etc/dnf/dnf.conf", "main", (("install_weak_deps", "False"), ("x", "1"))),
            Edit("/etc/os-release", None, (("VARIANT", "site"),)),
        ),
        units_enable=("agent.service", "chronyd.timer"),
        units_disable=("sshd.service",),
        units=Units(
            mask=("debug-shell.service",),
            unmask=("getty@tty1.service",),
            default_target="multi-user.target",
            user_enable=("pipewire.socket",),
            user_disable=("tracker.service",),
            preset=("fstrim.timer",),
        ),
        dropins=(
            FileSpec("files/agent-limits.conf", "/usr/lib/systemd/system/agent.service.d/agent-limits.conf",
                     "0644", limits),
            FileSpec("files/agent-limits.conf", "/usr/lib/systemd/system/chronyd.timer.d/50-x.conf",
                     "0644", limits),
        ),
        users=(
            User("ncsvc", 990, "ncsvc", "the agent", "/var/lib/ncsvc", "/sbin/nologin"),
            User("plain"),
        ),
        groups=(Group("ncsvc", 990, ("plain",)), Group("empty")),
        labels=(("a.first", "1"), ("org.example.team", "ops")),
        signing=Signing(
            (SigningScope("registry.example.com/ops",
                          FileSpec("files/tools.asc", "/etc/pki/containers/tools.asc", "0644", key.sha256),
                          "gpg", "https://sigs.example.com/", "gpg-public"),
             SigningScope("registry.example.com/edge",
                          FileSpec("files/cosign.pub", "/etc/pki/containers/cosign.pub", "0644",
                                   sha(tmp_path, "files/cosign.pub")),
                          "sigstore", None, "sigstore-public")),
            True,
        ),
        selinux=Selinux(
            (("httpd_can_network_connect", True), ("deny_ptrace", False)),
            (SelinuxModule("files/selinux/agent.cil", sha(tmp_path, "files/selinux/agent.cil"), "agent", 0),),
            300,
        ),
        checks=BuildChecks(False, ("strace",), ("/etc/motd",), (("strace", "-V"),)),
        tests=RecipeTests(
            present=("strace",),
            absent=("nano",),
            files=(FileCheck("/etc/motd", True, "0640", "hello"), FileCheck("/etc/issue", False)),
            commands=(CommandCheck(("strace", "-V"), 0, "strace", 5.0), CommandCheck(("false",), 1)),
            units_enabled=("agent.service",),
            units_disabled=("sshd.service",),
        ),
    )  # fmt: skip
    assert loaded.recipe == expected
    # Where each layer and stage was written, for the messages of a failed build.
    origins = [layer.origin for layer in loaded.recipe.layers]
    origins += [stage.origin for stage in loaded.recipe.stages]
    assert [o.rpartition("every-key.yaml:")[2] for o in origins] == ["45:5", "60:5", "30:5", "42:5"]


def test_what_a_recipe_leaves_out_gets_its_default(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    path = tmp_path / "recipes/least.yaml"
    path.write_text(
        f"name: least\nbase: {{image: {BASE}}}\nlayers: [{{name: l, install: [strace]}}]\n"
    )
    recipe = load_recipe(path, tmp_path).recipe
    assert recipe == Recipe(
        path="recipes/least.yaml",
        name="least",
        base=Base(BASE, None, Flavor.NESTOS, RpmOstreeVersion(2022, 16)),
        layers=(Layer("l", install=("strace",)),),
    )
    assert (recipe.tests, recipe.checks, recipe.initramfs) == (
        RecipeTests(),
        BuildChecks(),
        Initramfs(),
    )
    assert recipe.checks.host_rules is True and recipe.layers[0].weak_deps is True
    assert recipe.repos == () and recipe.signing == Signing() and recipe.selinux == Selinux()
    assert recipe.units == Units() and recipe.selinux.priority == 400


def test_newstart_takes_its_flavor_and_layer_options(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    path = tmp_path / "recipes/ns.yaml"
    path.write_text(
        "name: ns\nbase: {image: registry.example.com/newstart/base:6.06, flavor: newstart}\n"
        "layers: [{name: l, install: [strace], weak-deps: false}]\n"
        "tests: {commands: [{run: [strace, -V], timeout: 2.5}]}\n"
    )
    recipe = load_recipe(path, tmp_path).recipe
    assert recipe.base.flavor is Flavor.NEWSTART
    assert recipe.layers[0].weak_deps is False
    assert recipe.tests.commands == (CommandCheck(("strace", "-V"), 0, None, 2.5),)
