"""Recipe language part 2, validated and rendered: systemd, repos and keys, downloads,
files, users, package options. What a user sees: located problems, and the exact
commands the Containerfile runs (split back with shlex, as the build's shell would)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from nestcustom.containerfile.commands import HELPER
from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

HEAD = f"name: r\nbase: {{image: {BASE}, rpm-ostree: '2022.17'}}\n"


def problems(path: Path) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def runs(path: Path) -> list[list[list[str]]]:
    """Each RUN of the final image as its commands (argv lists), mounts dropped."""
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    image = text.split("\nFROM ")[-1]
    steps = []
    for block in image.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        joined = " ".join(line.rstrip("\\").strip() for line in lines)
        if not joined.startswith("RUN "):
            continue
        words = [w for w in shlex.split(joined[4:]) if not w.startswith("--mount=")]
        commands: list[list[str]] = []
        current: list[str] = []
        for word in words:
            if word == "&&":
                commands.append(current)
                current = []
            else:
                current.append(word)
        steps.append([*commands, current])
    return steps


def test_a_bare_unit_name_means_service_and_masks_come_last(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        HEAD + "systemd:\n  enable: [nexodus]\n  unmask: [tmp.mount]\n  mask: [debug-shell]\n"
        "  default-target: multi-user.target\n  user: {enable: [podman.socket]}\n"
    )
    assert runs(path)[0] == [
        ["systemctl", "unmask", "tmp.mount"],
        ["systemctl", "enable", "nexodus.service"],
        ["systemctl", "--global", "enable", "podman.socket"],
        ["systemctl", "mask", "debug-shell.service"],
        ["systemctl", "set-default", "multi-user.target"],
        ["ostree", "container", "commit"],
    ]


def test_unit_conflicts_are_located(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        HEAD + "systemd:\n  enable: [a]\n  mask: [a.service]\n  default-target: sshd\n"
    )
    assert problems(path) == [
        "systemd.enable[0]: a.service is both enabled and masked",
        "systemd.default-target: sshd.service is not a target",
    ]


def test_n_to_m_swap_is_one_transaction_and_kernel_rt_needs_an_initramfs(
    write_recipe: WriteRecipe,
) -> None:
    swap = (
        "layers:\n  - name: rt\n    swap:\n      - remove: [kernel, kernel-core, kernel-modules]\n"
        "        install: [kernel-rt, kernel-rt-core, kernel-rt-modules]\n"
    )
    assert problems(write_recipe(HEAD + swap)) == [
        "layers[0].swap[0].install: replacing the kernel on rpm-ostree 2022.17 does not "
        "regenerate the initramfs: the host would not boot"
    ]
    path = write_recipe(HEAD + swap + "initramfs: {regenerate: true}\n")
    assert runs(path)[0][0] == [
        "sh", HELPER, "clamp",
        "rpm-ostree", "override", "remove", "kernel", "kernel-core", "kernel-modules",
        "--install", "kernel-rt", "--install", "kernel-rt-core", "--install", "kernel-rt-modules",
    ]  # fmt: skip


def test_a_kernel_rt_rpm_url_is_a_kernel_replacement(write_recipe: WriteRecipe) -> None:
    url = "https://repo.example.com/kernel-rt-core-5.10.0-1.rt.x86_64.rpm"
    path = write_recipe(HEAD + f"layers: [{{name: k, replace: ['{url}']}}]\n")
    assert problems(path) == [
        "layers[0].replace[0]: replacing the kernel on rpm-ostree 2022.17 does not "
        "regenerate the initramfs: the host would not boot"
    ]


def test_newstart_n_to_m_swap_installs_then_removes(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}, flavor: newstart}}\n"
        "layers:\n  - {name: s, swap: [{remove: [a, b], install: [c]}]}\n"
    )
    assert runs(path)[0] == [
        ["dnf", "-y", "--allowerasing", "install", "c"],
        ["dnf", "-y", "remove", "a", "b"],
        ["dnf", "clean", "all"],
    ]


def test_control_characters_in_test_commands_are_refused(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        HEAD + "files: [{src: files/motd, dest: /etc/motd}]\ntests:\n  commands:\n"
        '    - run: ["echo", "a\\u0000b"]\n'
    )
    assert problems(path) == [
        "tests.commands[0].run[1]: 'a\\x00b' must be one line without control characters"
    ]


def test_basearch_in_both_spellings(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        HEAD + "repos:\n  - {id: a, baseurl: 'https://r.example.com/${basearch}/', "
        "gpgkey: 'https://r.example.com/k', repo_gpgcheck: true}\n"
        "  - {id: b, baseurl: 'https://r.example.com/$basearch/', gpgkey: 'https://r.example.com/k'}\n"
        "layers: [{name: a, install: [x]}]\n"
    )
    rendering = render_containerfile(load_recipe(path).recipe, "c")
    [repo] = [f.content for f in rendering.files if f.name.endswith(".repo")]
    assert "baseurl=https://r.example.com/${basearch}/\n" in repo
    assert "repo_gpgcheck=1\n" in repo and repo.count("repo_gpgcheck") == 1


def test_keys_and_base_repos_come_before_the_layers(
    write_recipe: WriteRecipe, project: Path
) -> None:
    (project / "files" / "RPM-GPG-KEY-tools").write_text("key\n")
    path = write_recipe(
        HEAD + "keys: [files/RPM-GPG-KEY-tools]\nbase-repos: {enable: [update], disable: [x]}\n"
        "layers: [{name: a, install: [tool]}]\n"
    )
    first = runs(path)[0]
    assert first[0][:3] == ["sh", HELPER, "files"]
    assert first[0][3] == "--copy" and first[0][5:] == [
        "/etc/pki/rpm-gpg/RPM-GPG-KEY-tools",
        "0644",
        "-",
    ]
    assert first[1] == ["sh", HELPER, "repos", "--enable", "update", "--disable", "x"]
    assert runs(path)[1][0] == ["sh", HELPER, "clamp", "rpm-ostree", "install", "tool"]


def test_a_layer_repo_is_mounted_for_its_step_only(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        HEAD + "layers:\n  - name: tools\n    install: [tool]\n    repos:\n"
        "      - {id: tools, baseurl: 'https://r.example.com/', gpgkey: 'https://r.example.com/k'}\n"
    )
    rendering = render_containerfile(load_recipe(path).recipe, "c")
    assert [f.name for f in rendering.files if f.name.endswith(".repo")] == ["layer-tools.repo"]
    [run] = [b for b in rendering.containerfile.split("\n\n") if "layer tools" in b]
    assert "source=c/layer-tools.repo,target=/etc/yum.repos.d/nestcustom-tools-" in run
    assert "COPY" not in rendering.containerfile


def test_file_step_problems_are_located(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        HEAD + "files: [{src: files/motd, dest: /etc/motd}]\n"
        "symlinks: [{path: /srv/tool, target: /usr/bin/tool}, {path: /etc/motd, target: x}]\n"
        "remove-files: [/usr/lib]\n"
        "users: [{name: agent, group: agent}]\n"
    )
    assert problems(path) == [
        "symlinks[0].path: /srv/tool would be dropped: a NestOS host keeps only /usr and /etc "
        "from an image",
        "symlinks[1].path: /etc/motd is also made by files:",
        "remove-files[0]: removing /usr/lib would take the system's own files with it",
        "users[0].group: user 'agent' names a primary group but no uid:",
    ]


def test_downloads_render_pinned_into_the_files_step(write_recipe: WriteRecipe) -> None:
    digest = "ab" * 32
    path = write_recipe(
        HEAD + "downloads:\n"
        f"  - {{url: 'https://dl.example.com/tool', sha256: {digest}, dest: /usr/bin/tool, "
        "mode: '0755'}\n"
    )
    assert runs(path)[0][0] == [
        "sh", HELPER, "files",
        "--fetch", "https://dl.example.com/tool", digest, "/usr/bin/tool", "0755", "-",
    ]  # fmt: skip


def test_repo_files_are_fetched_pinned_before_the_layers(write_recipe: WriteRecipe) -> None:
    digest = "cd" * 32
    path = write_recipe(
        HEAD
        + f"repo-files: [{{url: 'https://vendor.example.com/el8/vendor.repo', sha256: {digest}}}]\n"
        "layers: [{name: a, install: [tool]}]\n"
    )
    first, second = runs(path)[:2]
    assert first[0] == [
        "sh", HELPER, "files", "--fetch", "https://vendor.example.com/el8/vendor.repo", digest,
        "/etc/yum.repos.d/vendor.repo", "0644", "-",
    ]  # fmt: skip
    assert second[0] == ["sh", HELPER, "clamp", "rpm-ostree", "install", "tool"]
    bad = write_recipe(
        HEAD + f"repo-files: [{{url: 'https://v.example.com/x.txt', sha256: {digest}}}]\n"
    )
    assert problems(bad) == [
        "repo-files[0].url: 'https://v.example.com/x.txt' is not an http or https URL of a .repo file"
    ]


def test_removal_globs_go_through_the_helper_on_nestos_and_to_dnf_on_newstart(
    write_recipe: WriteRecipe,
) -> None:
    layer = "layers: [{name: slim, remove: [toolbox, 'kernel-devel*']}]\n"
    assert runs(write_recipe(HEAD + layer))[0][:2] == [
        ["sh", HELPER, "clamp", "rpm-ostree", "override", "remove", "toolbox"],
        ["sh", HELPER, "remove-matching", "kernel-devel*"],
    ]
    newstart = f"name: r\nbase: {{image: {BASE}, flavor: newstart}}\n" + layer
    assert runs(write_recipe(newstart))[0][0] == ["dnf", "-y", "remove", "kernel-devel*", "toolbox"]


def test_replace_from_a_repo_and_presets(write_recipe: WriteRecipe) -> None:
    layer = "layers: [{name: pin, replace-from: {repo: updates, packages: [toolbox]}}]\n"
    path = write_recipe(HEAD + layer + "systemd: {preset: [chronyd]}\n")
    steps = runs(path)
    assert steps[0][0] == [
        "sh", HELPER, "clamp",
        "rpm-ostree", "override", "replace", "--experimental", "--from", "repo=updates", "toolbox",
    ]  # fmt: skip
    assert steps[1][0] == ["systemctl", "preset", "chronyd.service"]
    sp1 = write_recipe(f"name: r\nbase: {{image: {BASE}, rpm-ostree: '2022.8'}}\n" + layer)
    assert problems(sp1) == [
        "layers[0].replace-from: rpm-ostree 2022.8 cannot replace from a repo "
        "(override replace --experimental --from, from 2022.16)"
    ]
    newstart = f"name: r\nbase: {{image: {BASE}, flavor: newstart}}\n" + layer
    assert runs(write_recipe(newstart))[0][0] == [
        "dnf", "-y", "--repo=updates", "distro-sync", "toolbox",
    ]  # fmt: skip


def test_a_destination_may_name_values_the_recipe_fixes(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        HEAD
        + "arch: x86_64\nfiles: [{src: files/motd, dest: '/etc/{{recipe.name}}/{{arch}}.conf'}]\n"
    )
    assert load_recipe(path).recipe.files[0].dest == "/etc/r/x86_64.conf"
    assert runs(path)[0][0][5:8] == ["/etc/r/x86_64.conf", "0644", "-"]


@pytest.mark.parametrize(
    ("image", "version"),
    [
        (
            "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64",
            "22.03-LTS-SP2.20230922.0",
        ),
        (
            "registry.example.com:5000/nestos/nestos:22.03-LTS-SP3.20240110.0-aarch64",
            "22.03-LTS-SP3.20240110.0",
        ),
        ("registry.example.com/nestos/nestos:beta", "beta"),
    ],
)
def test_base_version_is_the_tag_without_its_architecture(
    write_recipe: WriteRecipe, image: str, version: str
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: '{image}'}}\nlayers: [{{name: a, run: [[echo, '{{{{base.version}}}}']]}}]\n"
    )
    assert runs(path)[0][0] == ["echo", version]
