"""A rendered Containerfile's RUN lines, run as podman would run them but in a throwaway
root (tests/universe/helper_root.py): what a recipe says is what the image holds.

The golden files pin the text; these tests pin what the text does. Each RUN line's bind
mounts (the build helper, a layer's files and scripts, the base at /run/nestcustom/base)
are put where their targets say for that step only, its shell command runs in the root
with `container` set as podman sets it, and `ostree container commit` is the universe's
emulator (docs/contracts/nestos-rpm-ostree.md section 1: it cleans /run, /tmp, /var/tmp
and /var/cache, and fails on anything else left in /var). rpm-ostree is a stand-in that
records its arguments; COPY puts a project file in place. Each named stage (the facts of
the base, a builder stage, a layer's RPM files) runs in a root of its own, and COPY --from
and a RUN's mount from a stage read that root.
"""

from __future__ import annotations

import configparser
import glob
import json
import os
import shlex
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from nestcustom.containerfile.render import Rendering, render_containerfile
from nestcustom.image.inputs import instructions as containerfile_instructions
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.mirrors import parse_download_mirrors, with_download_mirrors
from tests.conftest import BASE, ROOT, WriteRecipe
from tests.universe.download_site import FILES, mirror_argument, serve_download_site
from tests.universe.helper_root import DRACUT, HelperRoot, build_module, make_root

EMULATOR = Path(__file__).resolve().parents[1] / "universe/base/emulators/ostree_container.py"
OSTREE = '#!/bin/sh\nexec /usr/bin/python3 /usr/lib/nc-emu/ostree_container.py "$@"\n'
RPM_OSTREE = (
    "#!/bin/sh\n"
    "# records its arguments outside /var (ostree container commit refuses what /var holds)\n"
    "printf '%s\\n' \"$*\" >>/rpm-ostree.calls\n"
    "# and leaves repo metadata in /var/cache/rpm-ostree (the contract: cleanup -m empties it)\n"
    "mkdir -p /var/cache/rpm-ostree && echo solv >/var/cache/rpm-ostree/repomd.solv\n"
)
BASE_MOUNT = "/run/nestcustom/base"


def instructions(containerfile: str) -> list[str]:
    """The Containerfile's instructions as a build reads them (the product's own reader,
    which keeps a newline where a line was continued): continued lines joined by a blank."""
    return [i.replace("\n", " ") for i in containerfile_instructions(containerfile)]


def split_run(instruction: str) -> tuple[list[dict[str, str]], str]:
    """A RUN instruction's bind mounts (their fields) and its shell command."""
    rest = instruction.removeprefix("RUN").lstrip()
    mounts = []
    while rest.startswith("--mount="):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        fields = dict(part.split("=", 1) for part in flag.removeprefix("--mount=").split(","))
        assert fields.pop("type") == "bind", flag
        mounts.append(fields)
    return mounts, rest


class Builder:
    """Runs a rendering's instructions from the project `project`: its last stage in `box`
    (the base as the test prepared it), each named stage in a root of its own."""

    def __init__(
        self, box: HelperRoot, project: Path, prepare: Callable[[HelperRoot], None] | None = None
    ) -> None:
        self.box = box
        self.project = project
        # what the test put into its base, done again for a stage FROM the base
        self.prepare = prepare or (lambda root: None)
        self.stages: dict[str, HelperRoot] = {}
        self.prepare(box)
        self._emulate(box)

    @staticmethod
    def _emulate(box: HelperRoot) -> None:
        box.write("/usr/lib/nc-emu/ostree_container.py", EMULATOR.read_text())
        box.write("/usr/bin/ostree", OSTREE, 0o755)
        box.write("/usr/bin/rpm-ostree", RPM_OSTREE, 0o755)
        # what makes the emulator take the root for an ostree container, as on NestOS
        box.write("/sysroot/ostree/repo/config", "[core]\nrepo_version=1\nmode=bare-split-xattrs\n")

    def build(self, rendering: Rendering) -> list[str]:
        """Each instruction in order: FROM starts a stage (a fresh root for a named one,
        `box` for the last), RUN runs, COPY puts files in place (from the project or,
        with --from, a stage's root), LABEL changes nothing here. The RUN commands, as run."""
        for generated in rendering.files:
            target = self.project / generated.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(generated.content)
        base = rendering.images[0]
        ran = []
        current = self.box
        for instruction in instructions(rendering.containerfile):
            keyword = instruction.split(" ", 1)[0]
            if keyword == "FROM":
                current = self.stage(instruction, base)
            elif keyword == "RUN":
                ran.append(self.run(current, instruction, base))
            elif keyword == "COPY":
                self.copy(current, instruction)
            else:
                assert keyword == "LABEL", instruction
        assert current is self.box, "the last stage is the image"
        return ran

    def stage(self, instruction: str, base: str) -> HelperRoot:
        """FROM IMAGE [AS NAME]: the last stage (no name) is the base, `box`."""
        image, _, name = instruction.removeprefix("FROM ").partition(" AS ")
        if not name:
            assert image == base, instruction
            return self.box
        assert name not in self.stages, instruction
        root = make_root(self.box.top.parent / f"stage-{name}")
        self._emulate(root)
        if image == base:
            self.prepare(root)
        self.stages[name] = root
        return root

    def copy(self, box: HelperRoot, instruction: str) -> None:
        """COPY [--from=STAGE] [--chmod=MODE] [--chown=UID:GID] SRC DEST (or its JSON
        form; SRC may be a glob; DEST ending in / is a directory)."""
        words = instruction.split(" ")[1:]
        flags = {}
        while words[0].startswith("--"):
            name, _, value = words.pop(0).partition("=")
            flags[name] = value
        assert set(flags) <= {"--from", "--chmod", "--chown"}, instruction
        rest = " ".join(words)
        source, dest = json.loads(rest) if rest.startswith("[") else rest.split(" ")
        mode = int(flags["--chmod"], 8) if "--chmod" in flags else None  # None: as it is
        if "--from" in flags:
            stage = self.stages[flags["--from"]]
            found = sorted(glob.glob(str(stage.path(source))))
        else:
            found = [str(self.project / source)]
        assert found, instruction  # podman fails a COPY that matches nothing
        for one in map(Path, found):
            if one.is_dir():  # a directory's content goes to DEST
                for file in sorted(p for p in one.rglob("*") if p.is_file()):
                    inside = f"{dest.rstrip('/')}/{file.relative_to(one)}"
                    self.place(box, inside, file, mode, flags.get("--chown"))
            else:
                inside = dest + one.name if dest.endswith("/") else dest
                self.place(box, inside, one, mode, flags.get("--chown"))

    @staticmethod
    def place(
        box: HelperRoot, inside: str, source: Path, mode: int | None, owner: str | None
    ) -> None:
        placed = box.write(inside, source.read_bytes(), mode or stat.S_IMODE(source.stat().st_mode))
        if owner:
            uid, _, gid = owner.partition(":")
            os.chown(placed, int(uid), int(gid or uid))

    def run(self, box: HelperRoot, instruction: str, base: str) -> str:
        mounts, command = split_run(instruction)
        placed = []
        for mount in mounts:
            target = box.root / mount["target"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if mount.get("from") == base:
                # the base, read-only: the root as it was before the test changed it
                assert (mount["source"], mount["target"]) == ("/", BASE_MOUNT), mount
                target.symlink_to("/base")
            elif "from" in mount:  # a stage's directory
                shutil.copytree(self.stages[mount["from"]].path(mount["source"]), target)
            else:
                source = self.project / mount["source"]
                if source.is_dir():
                    shutil.copytree(source, target, symlinks=True)
                else:
                    shutil.copy2(source, target)
            placed.append(target)
        done = box.enter(["/usr/bin/env", "container=oci", "/bin/sh", "-c", command], 120)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        for target in placed:  # a bind mount lasts one step; commit cleaned /run already
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.exists():
                shutil.rmtree(target)
        return command


def rendered(path: Path) -> Rendering:
    return render_containerfile(load_recipe(path).recipe, "containerfiles/r")


@pytest.fixture
def builder(box: HelperRoot, project: Path) -> Builder:
    return Builder(box, project)


def mode_of(box: HelperRoot, inside: str) -> int:
    return stat.S_IMODE(box.path(inside).lstat().st_mode)


def test_packages_files_links_directories_and_an_edit_land_where_the_recipe_says(
    builder: Builder, box: HelperRoot, project: Path, write_recipe: WriteRecipe
) -> None:
    (project / "files" / "agent.conf").write_text("level=debug\n")
    (project / "files" / "tool").write_text("#!/bin/sh\necho tool\n")
    box.write("/etc/nc.ini", "[main]\nkey=old\n")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n"
        "  - name: tools\n    install: [strace, nc-alpha]\n"
        "  - name: slim\n    remove: [nc-beta]\n"
        "files:\n"
        "  - {src: files/agent.conf, dest: /etc/agent/agent.conf, mode: '0600'}\n"
        "  - {src: files/tool, dest: /usr/libexec/nc/nc-tool, mode: '0755', owner: '990:990'}\n"
        "directories:\n  - {path: /etc/agent/conf.d, mode: '0750'}\n"
        "symlinks:\n  - {path: /usr/libexec/nc/nc-tool-alias, target: nc-tool}\n"
        "edits:\n  - {file: /etc/nc.ini, section: main, set: {key: new, added: '1'}}\n"
    )
    ran = builder.build(rendered(path))
    assert all(command.endswith("&& ostree container commit") for command in ran)
    assert (box.root / "rpm-ostree.calls").read_text().splitlines() == [
        "install nc-alpha strace",  # sorted: the order written changes nothing
        "override remove nc-beta",
    ]
    assert box.path("/etc/agent/agent.conf").read_text() == "level=debug\n"
    assert mode_of(box, "/etc/agent/agent.conf") == 0o600
    tool = box.path("/usr/libexec/nc/nc-tool")
    assert (tool.read_text(), mode_of(box, "/usr/libexec/nc/nc-tool")) == (
        "#!/bin/sh\necho tool\n",
        0o755,
    )
    assert (tool.stat().st_uid, tool.stat().st_gid) == (990, 990)
    assert mode_of(box, "/etc/agent/conf.d") == 0o750
    assert box.path("/etc/agent/conf.d").is_dir()
    assert str(box.path("/usr/libexec/nc/nc-tool-alias").readlink()) == "nc-tool"
    assert box.path("/etc/nc.ini").read_text() == "[main]\nkey=new\nadded=1\n"


def test_commands_and_scripts_run_in_order_with_the_layers_environment_and_values(
    builder: Builder, box: HelperRoot, project: Path, write_recipe: WriteRecipe
) -> None:
    (project / "files" / "stamp.sh").write_text(
        '#!/bin/sh\nset -eu\nprintf "%s %s site=%s\\n" "$1" "$2" "$SITE" >>/etc/nc-order\n'
    )
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n"
        "  - name: site\n    env: {SITE: lab-1}\n"
        "    run:\n      - [sh, -c, 'echo \"first $SITE\" >>/etc/nc-order']\n"
        "    script:\n      - {path: files/stamp.sh, args: ['{{os.version}}', 'two words']}\n"
        "  - name: later\n    run: [[sh, -c, 'echo \"later ${SITE:-unset}\" >>/etc/nc-order']]\n"
    )
    builder.build(rendered(path))
    assert box.path("/etc/nc-order").read_text().splitlines() == [
        "first lab-1",
        "22.03 two words site=lab-1",  # {{os.version}}: the VERSION_ID of the root
        "later unset",  # env: is the layer's own
    ]


def test_what_a_step_leaves_in_var_cache_and_tmp_is_gone_and_the_build_helper_too(
    builder: Builder, box: HelperRoot, write_recipe: WriteRecipe
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n  - name: cache\n    run:\n"
        "      - [sh, -c, 'mkdir -p /var/cache/nc /tmp/nc && touch /var/cache/nc/x /tmp/nc/y']\n"
    )
    builder.build(rendered(path))
    assert list((box.root / "var/cache").glob("*")) == []
    assert box.left_in_tmp() == []
    assert not (box.root / "run/nestcustom").exists()


def test_on_sp1_whose_commit_cleans_nothing_a_package_layer_still_leaves_no_cache(
    builder: Builder, box: HelperRoot, write_recipe: WriteRecipe
) -> None:
    # ostree-ext 0.7.1 (NestOS SP1) only lists what /var holds (contract, section 1)
    box.write("/usr/lib/nestcustom-emu/versions", "ostree-ext=0.7.1\n")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: t, install: [strace]}}\n"
    )
    builder.build(rendered(path))
    assert (box.root / "rpm-ostree.calls").read_text() == "install strace\n"
    assert list((box.root / "var/cache").glob("**/*")) == []


def test_the_builds_checks_fail_the_step_that_breaks_a_promise(
    builder: Builder, write_recipe: WriteRecipe
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n  - name: tool\n    run: [[ln, -s, /usr/lib/nothing, /etc/tool.conf]]\n"
        "checks:\n  files: [/etc/promised.conf]\n"
    )
    with pytest.raises(AssertionError) as failed:
        builder.build(rendered(path))
    assert "/etc/promised.conf" in str(failed.value)
    assert "check" in shlex.split(str(failed.value).splitlines()[0])


def test_units_enabled_and_masked_and_users_declared_the_nestos_way(
    builder: Builder, box: HelperRoot, project: Path, write_recipe: WriteRecipe
) -> None:
    (project / "files" / "nc-agent.service").write_text(
        "[Unit]\nDescription=agent\n[Service]\nExecStart=/usr/bin/true\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "files:\n  - {src: files/nc-agent.service, dest: /usr/lib/systemd/system/nc-agent.service}\n"
        "systemd:\n  enable: [nc-agent.service]\n  mask: [nc-noisy.service]\n"
        "users:\n  - {name: ncagent, uid: 1500, description: the agent}\n"
    )
    builder.build(rendered(path))
    wants = box.path("/etc/systemd/system/multi-user.target.wants/nc-agent.service")
    # the machine's systemctl: Debian's writes /lib/..., NestOS's /usr/lib/...
    assert str(wants.readlink()).endswith("lib/systemd/system/nc-agent.service")
    assert str(box.path("/etc/systemd/system/nc-noisy.service").readlink()) == "/dev/null"
    sysusers = box.path("/usr/lib/sysusers.d/nestcustom-r.conf").read_text()
    assert sysusers.splitlines()[1:] == ['u ncagent 1500 "the agent" - -']
    assert "ncagent" not in box.path("/etc/passwd").read_text()  # the host makes the user


def test_a_unit_masked_in_the_base_is_unmasked_before_it_is_enabled_and_a_mask_is_made(
    builder: Builder, box: HelperRoot, project: Path, write_recipe: WriteRecipe
) -> None:
    unit = "[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n"
    (project / "files" / "nc-a.service").write_text(unit)
    (project / "files" / "nc-b.service").write_text(unit)
    box.link("/etc/systemd/system/nc-b.service", "/dev/null")  # masked in the base
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "files:\n"
        "  - {src: files/nc-a.service, dest: /usr/lib/systemd/system/nc-a.service}\n"
        "  - {src: files/nc-b.service, dest: /usr/lib/systemd/system/nc-b.service}\n"
        "systemd:\n  enable: [nc-b.service]\n  mask: [nc-a.service]\n"
        "  unmask: [nc-b.service]\n  default-target: multi-user.target\n"
    )
    builder.build(rendered(path))
    system = "/etc/systemd/system"
    assert str(box.path(f"{system}/nc-a.service").readlink()) == "/dev/null"
    assert not box.path(f"{system}/nc-b.service").is_symlink()
    assert box.path(f"{system}/multi-user.target.wants/nc-b.service").is_symlink()
    assert str(box.path(f"{system}/default.target").readlink()).endswith("multi-user.target")


def test_downloads_are_fetched_through_the_mirror_checked_and_put_in_place(
    builder: Builder, box: HelperRoot, project: Path
) -> None:
    # The example recipe, its vendor site read from a mirror on 127.0.0.1 (--download-mirror)
    shutil.copy(ROOT / "recipes/nestos-downloads.yaml", project / "recipes/r.yaml")
    recipe = load_recipe(project / "recipes/r.yaml").recipe
    with serve_download_site() as site:
        mirrored = with_download_mirrors(recipe, parse_download_mirrors([mirror_argument(site)]))
        builder.build(render_containerfile(mirrored, "containerfiles/r"))
    tool = FILES / "nc-tool/2.1.0/nc-tool-linux-x86_64"
    assert box.path("/usr/bin/nc-tool").read_bytes() == tool.read_bytes()
    assert mode_of(box, "/usr/bin/nc-tool") == 0o755
    completions = box.path("/usr/share/bash-completion/completions")
    assert sorted(p.name for p in completions.iterdir()) == ["nc-tool"]


def test_keys_repos_and_base_repos_are_in_place_before_the_layers_that_use_them(
    builder: Builder, box: HelperRoot, project: Path, write_recipe: WriteRecipe
) -> None:
    (project / "files" / "RPM-GPG-KEY-site").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    box.write(
        "/etc/yum.repos.d/openEuler.repo",
        "[OS]\nbaseurl=http://repo.example.com/OS\nenabled=1\n\n"
        "[update]\nbaseurl=http://repo.example.com/update\nenabled=1\n",
    )
    box.write(
        "/usr/bin/rpm-ostree", RPM_OSTREE + "cat /etc/yum.repos.d/*.repo >>/repos.seen\n", 0o755
    )
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "keys: [files/RPM-GPG-KEY-site]\n"
        "repos:\n  - {id: site, baseurl: 'http://rpms.example.com/$basearch/',"
        " gpgkey: 'file:///etc/pki/rpm-gpg/RPM-GPG-KEY-site'}\n"
        "base-repos: {disable: [update]}\n"
        "layers:\n  - {name: t, install: [strace]}\n"
    )
    builder.build(rendered(path))
    assert box.path("/etc/pki/rpm-gpg/RPM-GPG-KEY-site").read_text().startswith("-----BEGIN")
    seen = (box.root / "repos.seen").read_text()  # what rpm-ostree install read
    assert "[site]\n" in seen and "baseurl=http://rpms.example.com/$basearch/\n" in seen
    assert "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-site\n" in seen
    base_repo = configparser.ConfigParser()
    base_repo.read_string(box.path("/etc/yum.repos.d/openEuler.repo").read_text())
    assert {s: dict(base_repo[s]) for s in base_repo.sections()} == {
        "OS": {"baseurl": "http://repo.example.com/OS", "enabled": "1"},
        "update": {"baseurl": "http://repo.example.com/update", "enabled": "0"},
    }


def test_dropins_kernel_arguments_and_one_users_units_are_files_in_the_image(
    builder: Builder, box: HelperRoot, project: Path, write_recipe: WriteRecipe
) -> None:
    (project / "files" / "limits.conf").write_text("[Service]\nLimitNOFILE=65536\n")
    (project / "files" / "nc-sync.timer").write_text(
        "[Timer]\nOnBootSec=1min\n[Install]\nWantedBy=timers.target\n"
    )
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "files:\n  - {src: files/nc-sync.timer, dest: /usr/lib/systemd/user/nc-sync.timer}\n"
        "systemd:\n"
        "  dropins:\n    - {unit: sshd, src: files/limits.conf, name: 50-limits.conf}\n"
        "  user-units:\n    - {user: core, enable: [nc-sync.timer], linger: true}\n"
        "kernel-arguments:\n  append: [console=ttyS0, nc.opt=1]\n"
    )
    builder.build(rendered(path))
    dropin = box.path("/usr/lib/systemd/system/sshd.service.d/50-limits.conf")
    assert dropin.read_text() == "[Service]\nLimitNOFILE=65536\n"
    kargs = box.path("/usr/lib/bootc/kargs.d/nestcustom-r.toml").read_text()
    assert 'kargs = ["console=ttyS0", "nc.opt=1"]' in kargs
    condition = box.path("/usr/lib/systemd/user/nc-sync.timer.d/50-nestcustom-user.conf")
    assert "ConditionUser=|core\n" in condition.read_text()
    wants = box.path("/etc/systemd/user/timers.target.wants/nc-sync.timer")
    assert str(wants.readlink()).endswith("systemd/user/nc-sync.timer")
    tmpfiles = box.path("/usr/lib/tmpfiles.d/nestcustom-r.conf").read_text()
    assert "f /var/lib/systemd/linger/core 0644 root root -\n" in tmpfiles


def test_a_removal_glob_removes_what_the_database_names_and_one_matching_nothing_fails(
    builder: Builder,
    box: HelperRoot,
    tiny_rpms: dict[str, Path],
    write_recipe: WriteRecipe,
) -> None:
    box.install_rpms(tiny_rpms["nc-alpha"], tiny_rpms["nc-beta"], tiny_rpms["nc-gamma"])
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n  - {name: slim, remove: ['nc-alph?', 'nc-[b]eta']}\n  - {name: more, remove: [nc-z*]}\n"
    )
    with pytest.raises(AssertionError, match="no installed package matches 'nc-z\\*'"):
        builder.build(rendered(path))
    assert (box.root / "rpm-ostree.calls").read_text().splitlines() == [
        "override remove nc-alpha nc-beta"
    ]


KVER = "5.10.0-182.0.0.95.oe2203sp2.x86_64"

# A builder stage's script: a kernel module (an ELF object with its .modinfo strings, as
# modinfo reads one) for the kernel it is given, and a note of what it was given.
MAKE_MODULE = r"""#!/bin/sh
set -eu
mkdir -p /out
i=0
for info in name=nc_demo "vermagic=$1 SMP mod_unload " license=GPL "description=$2"; do
    i=$((i + 1))
    printf 'static const char m%s[] __attribute__((section(".modinfo"), used, aligned(1))) = "%s";\n' \
        "$i" "$info"
done >/tmp/nc_demo.c
gcc -c -o /out/nc_demo.ko /tmp/nc_demo.c
printf 'built for %s on %s\n' "$1" "$SITE" >/out/note
"""


def with_kernel(root: HelperRoot) -> None:
    """A base with one kernel (its index files, a vmlinuz) and dracut that writes what it
    was asked for (records outside /var: the commit refuses what /var holds)."""
    for name in ("vmlinuz", "modules.order", "modules.builtin", "modules.builtin.modinfo"):
        root.write(f"/usr/lib/modules/{KVER}/{name}", "kernel image\n" if name == "vmlinuz" else "")
    root.write("/usr/bin/dracut", DRACUT.replace("/var/log/dracut.calls", "/dracut.calls"), 0o755)


STAGE_RECIPE = (
    f"name: r\nbase: {{image: {BASE}}}\n"
    "stages:\n"
    "  - name: make\n    from: example.com/builder:1\n    packages: dnf\n"
    "    files:\n      - {src: files/nc-alpha.rpm, dest: /out/rpms/nc-alpha-1.0-1.noarch.rpm,"
    " owner: '990:990'}\n"
    "      - {src: files/src, dest: '/src/{{recipe.name}}'}\n"
    "    layers:\n      - name: compile\n        env: {SITE: lab-1}\n"
    "        run: [[/src/r/bin/gen.sh]]\n"
    "        script: [{path: files/make.sh, args: ['{{kernel}}', 'made in a stage']}]\n"
    "layers:\n  - name: tools\n    install: [strace, {from: make, path: /out/rpms/*.rpm}]\n"
    "files:\n  - {from: make, src: /out/note, dest: /etc/nc-note, mode: '0640', owner: '990:990'}\n"
    "kernel-modules:\n  - {name: nc_demo, from: make, src: /out/nc_demo.ko, options: greeting=hi}\n"
    "  - {name: nc_site, src: files/nc_site.ko, load: false}\n"
    "initramfs: {regenerate: true, drivers: [nc_demo]}\n"
)


def test_a_builder_stage_makes_a_module_for_the_bases_kernel_and_files_and_rpms_for_the_image(
    box: HelperRoot, project: Path, tiny_rpms: dict[str, Path], write_recipe: WriteRecipe
) -> None:
    (project / "files" / "make.sh").write_text(MAKE_MODULE)
    shutil.copy(tiny_rpms["nc-alpha"], project / "files" / "nc-alpha.rpm")
    gen = project / "files/src/bin/gen.sh"  # a directory of sources: modes as they are
    gen.parent.mkdir(parents=True)
    gen.write_text("#!/bin/sh\nmkdir -p /out && echo generated >/out/generated\n")
    gen.chmod(0o755)
    (project / "files/src/README").write_text("sources\n")
    shutil.copy(build_module(project / "kmod", "nc_site", KVER), project / "files" / "nc_site.ko")
    builder = Builder(box, project, prepare=with_kernel)
    builder.build(rendered(write_recipe(STAGE_RECIPE)))
    # {{kernel}} in the stage is the base's kernel, read by the facts stage
    found = box.sh(
        f"modinfo -k {KVER} -F vermagic nc_demo; modinfo -k {KVER} -F description nc_demo"
    )
    assert found.stdout == f"{KVER} SMP mod_unload \nmade in a stage\n", found.stderr
    placed = box.path(f"/usr/lib/modules/{KVER}/extra/nc_demo.ko")
    assert placed.read_bytes() == builder.stages["make"].path("/out/nc_demo.ko").read_bytes()
    assert box.path("/usr/lib/modules-load.d/nestcustom-r.conf").read_text() == "nc_demo\n"
    assert box.path("/usr/lib/modprobe.d/nestcustom-r.conf").read_text() == (
        "options nc_demo greeting=hi\n"
    )
    assert not box.path("/usr/lib/nestcustom-kmods").exists()  # staged, then removed
    site = box.path(f"/usr/lib/modules/{KVER}/extra/nc_site.ko")  # a project file's module
    assert site.read_bytes() == (project / "files" / "nc_site.ko").read_bytes()
    # a stage's own file keeps its owner there (a build run as a user of the stage)
    staged_rpm = builder.stages["make"].path("/out/rpms/nc-alpha-1.0-1.noarch.rpm")
    assert (staged_rpm.stat().st_uid, staged_rpm.stat().st_gid) == (990, 990)
    stage = builder.stages["make"]
    modes = mode_of(stage, "/src/r/bin/gen.sh"), mode_of(stage, "/src/r/README")
    assert modes == (0o755, 0o644)  # and {{recipe.name}} in a stage file's dest is filled
    assert stage.path("/out/generated").read_text() == "generated\n"  # gen.sh ran
    initramfs = box.path(f"/usr/lib/modules/{KVER}/initramfs.img").read_text()
    assert f"--kver {KVER}" in initramfs and "--add-drivers nc_demo" in initramfs
    # a file out of the stage, with the recipe's mode and owner
    note = box.path("/etc/nc-note")
    assert note.read_text() == f"built for {KVER} on lab-1\n"  # the stage layer's env
    assert (mode_of(box, "/etc/nc-note"), note.stat().st_uid, note.stat().st_gid) == (
        0o640, 990, 990,
    )  # fmt: skip
    # the stage's RPM files in the layer's own transaction, and listed in the image
    assert (box.root / "rpm-ostree.calls").read_text() == (
        "install strace /run/nestcustom/rpms/0/nc-alpha-1.0-1.noarch.rpm\n"
    )
    listed = box.path("/usr/share/nestcustom/rpms/tools.list").read_text().split()
    assert listed[1:] == ["nc-alpha-1.0-1.noarch", "0/nc-alpha-1.0-1.noarch.rpm"]
    # nothing of the stages reaches the image
    assert not box.path("/out").exists() and not box.path("/nestcustom-facts").exists()


def test_a_file_under_opt_goes_to_usr_lib_opt_and_the_checks_look_for_it_there(
    builder: Builder, box: HelperRoot, project: Path, write_recipe: WriteRecipe
) -> None:
    (box.root / "opt").symlink_to("var/opt")  # as on NestOS: /var is the host's, not the image's
    (project / "files" / "run.sh").write_text("#!/bin/sh\n")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "files: [{src: files/run.sh, dest: /opt/agent/bin/run.sh, mode: '0755'}]\n"
        "checks: {files: [/opt/agent/bin/run.sh]}\n"
        "tests: {files: [{path: /opt/agent/bin/run.sh, mode: '0755'}]}\n"
    )
    recipe = load_recipe(path).recipe
    builder.build(render_containerfile(recipe, "containerfiles/r"))  # the check step passed
    assert mode_of(box, "/usr/lib/opt/agent/bin/run.sh") == 0o755
    tmpfiles = box.path("/usr/lib/tmpfiles.d/nestcustom-r.conf").read_text()
    assert "L /opt/agent - - - - ../../usr/lib/opt/agent\n" in tmpfiles
    # `nestcustom test` looks there too (a container's /opt is the image's empty var/opt)
    assert [f.path for f in recipe.tests.files] == ["/usr/lib/opt/agent/bin/run.sh"]
