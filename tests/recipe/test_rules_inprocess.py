"""The NestOS rules, called in-process: what a user reads (FILE:LINE:COL, path, message,
hint), the code `nestcustom validate --json` gives tools, and the layer count."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import Problem, RecipeError, Severity
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.rules_files import MAX_LAYERS, layer_count
from tests.conftest import BASE, FIXTURES, WriteRecipe

HEAD = f"name: r\nbase: {{image: {BASE}}}\n"  # NestOS, rpm-ostree 2022.16 by default
NEWSTART = "name: r\nbase: {image: 'registry.example.com/newstart:1', flavor: newstart}\n"
NOCHECK = "checks: {host-rules: false}\n"
LAYER = "layers: [{name: a, install: [strace]}]\n"
STAGE = "stages: [{name: b, from: 'quay.io/x/b:1', layers: [{name: mk, run: [[make]]}]}]\n"


@pytest.fixture
def here(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand in the project, so messages name recipes/r.yaml."""
    monkeypatch.chdir(project)
    return project


def at(text: str, needle: str, nth: int = 1) -> str:
    """FILE:LINE:COL of the nth `needle` in the recipe text: where a value is written."""
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    return f"recipes/r.yaml:{line}:{start - text.rfind(chr(10), 0, start)}"


def errors(path: Path) -> list[Problem]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return list(caught.value.problems)


def report(path: Path) -> list[str]:
    """The problems as `nestcustom validate` prints them."""
    return [p.format() for p in errors(path)]


def warnings(path: Path) -> list[str]:
    return [w.format() for w in load_recipe(path).warnings]


# -- the codes tools read --------------------------------------------------------------------

# Each fail fixture's problems, in the order reported, by the code `validate --json` gives.
FIXTURE_CODES = {
    "arch-mismatch": ["arch-mismatch", "arch-mismatch"],
    "boundaries": ["rpm-url-unsupported", "deletions-kept-on-host", "source-rpm"],
    "dest-dropped": ["dropped-path", "dropped-path", "accounts"],
    "files-step": [
        "unsafe-source-path",
        "dropped-path",
        "duplicate",
        "dropped-path",
        "remove-system-tree",
        "dropped-path",
        "dropped-path",
        "group-without-uid",
        "unit-both",
        "unit-both",
        "not-a-target",
    ],
    "include-lint-error": ["install-and-remove", "empty-layer"],
    "include-cycle": ["include", "include"],
    "opt-name": ["opt-name", "opt-name"],
    "include-outside": ["include"],
    "missing-file-only": ["file"],
    "files-bad": ["file"],
    "install-and-remove": ["install-and-remove", "empty-layer", "duplicate"],
    "kernel-newstart": ["not-bootable", "not-bootable"],
    "kernel-options": ["module-does-nothing", "initramfs-off"],
    "kernel-replace": ["kernel-replace", "kernel-replace", "kernel-replace"],
    "labels-units": ["bootable-label", "bootable-label", "unit-both"],
    "nothing-to-do": ["nothing-to-do"],
    "repos-more": ["repo-both", "duplicate", "repo-unused", "plain-http", "gpgcheck-off"],
    "script-python": ["interpreter-missing"],
    "sp1-rpm-url": ["rpm-url-unsupported", "source-rpm"],
    "stages": [
        "reserved-stage",
        "empty-layer",
        "unknown-stage",
        "stage-path",
        "unknown-stage",
        "stage-path",
    ],
    "swap-2022-16": ["swap-unsupported"],
    "weak-deps-nestos": ["weak-deps-unsupported"],
    "values-misplaced": ["value-in-repo", "unknown-value", "value-in-path"],
}


@pytest.mark.parametrize("name", sorted(FIXTURE_CODES))
def test_fail_fixture_codes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(RecipeError) as caught:
        load_recipe(Path("fail") / f"{name}.yaml", project=FIXTURES)
    assert [p.code for p in caught.value.problems] == FIXTURE_CODES[name]


# -- the layer count -------------------------------------------------------------------------

# (recipe, layers): each adds one kind of step (or none) to a recipe without the check step.
LAYER_CASES = {
    "a layer and the check step": (HEAD + LAYER, 2),
    "a layer without host rules": (HEAD + NOCHECK + LAYER, 1),
    "newstart has no host rules": (NEWSTART + LAYER, 1),
    "checks.packages": (HEAD + "checks: {host-rules: false, packages: [strace]}\n" + LAYER, 2),
    "checks.files": (HEAD + "checks: {host-rules: false, files: [/etc/motd]}\n" + LAYER, 2),
    "checks.commands": (HEAD + "checks: {host-rules: false, commands: [[id]]}\n" + LAYER, 2),
    "repos": (
        HEAD + NOCHECK + LAYER + "repos: [{id: t, baseurl: 'https://r/', gpgkey: 'https://r/k'}]\n",
        2,
    ),
    "base-repos": (HEAD + NOCHECK + LAYER + "base-repos: {enable: [updates]}\n", 2),
    "modules from a stage": (
        HEAD
        + NOCHECK
        + STAGE
        + "kernel-modules: [{name: m, from: b, src: /out/m.ko}, {name: n, from: b, src: /n.ko}]\n",
        3,
    ),
    "a module from the project": (
        HEAD + NOCHECK + "kernel-modules: [{name: m, src: files/m.ko}]\n",
        1,
    ),
    "a module from an RPM": (HEAD + NOCHECK + "kernel-modules: [{name: m}]\n", 1),
    "initramfs": (HEAD + NOCHECK + "initramfs: {regenerate: true}\n", 1),
    "files from a stage": (
        HEAD
        + NOCHECK
        + STAGE
        + "files: [{src: /out/a, dest: /usr/bin/a, from: b}, {src: /b, dest: /usr/bin/b, from: b}]\n",
        2,
    ),
    "files from the project": (HEAD + NOCHECK + "files: [{src: files/motd, dest: /etc/motd}]\n", 1),
    "enable": (HEAD + NOCHECK + "systemd: {enable: [a]}\n", 1),
    "disable": (HEAD + NOCHECK + "systemd: {disable: [a]}\n", 1),
    "mask": (HEAD + NOCHECK + "systemd: {mask: [a]}\n", 1),
    "unmask": (HEAD + NOCHECK + "systemd: {unmask: [a]}\n", 1),
    "default-target": (HEAD + NOCHECK + "systemd: {default-target: multi-user.target}\n", 1),
    "user enable": (HEAD + NOCHECK + "systemd: {user: {enable: [a]}}\n", 1),
    "user disable": (HEAD + NOCHECK + "systemd: {user: {disable: [a]}}\n", 1),
    "preset": (HEAD + NOCHECK + "systemd: {preset: [a]}\n", 1),
    "selinux booleans": (HEAD + NOCHECK + "selinux: {booleans: {a_b: true}}\n", 1),
    "selinux and a layer": (HEAD + NOCHECK + LAYER + "selinux: {booleans: {a_b: false}}\n", 2),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_count_is_the_rendered_steps(
    case: str, write_recipe: WriteRecipe, project: Path
) -> None:
    (project / "files" / "m.ko").write_bytes(b"")
    text, layers = LAYER_CASES[case]
    recipe = load_recipe(write_recipe(text)).recipe
    image = render_containerfile(recipe, "c").containerfile.split("\nFROM ")[-1]
    steps = [line for line in image.splitlines() if line.startswith(("RUN ", "COPY "))]
    assert layer_count(recipe) == layers == len(steps)


def _many_layers(n: int) -> str:
    return "layers:\n" + "".join(f"  - {{name: l{i}, install: [p{i}]}}\n" for i in range(n))


def test_a_full_layer_budget_loads(write_recipe: WriteRecipe) -> None:
    # 59 layers and the check step: exactly the 60 that fit.
    recipe = load_recipe(write_recipe(HEAD + _many_layers(MAX_LAYERS - 1))).recipe
    assert layer_count(recipe) == MAX_LAYERS


def test_one_step_over_the_budget_is_located_at_the_recipe(
    write_recipe: WriteRecipe, here: Path
) -> None:
    # 60 layers fit; the check step is the 61st: no single layer is to blame.
    path = write_recipe(HEAD + _many_layers(MAX_LAYERS))
    [problem] = errors(path)
    assert problem.code == "too-many-layers"
    assert problem.format() == (
        "recipes/r.yaml:1:1: the image gets 61 layers on top of its base; at most 60 fit\n"
        "  hint: merge related layers; every file, link and directory already shares one "
        "step, but each files[] entry with from: is a COPY of its own"
    )


# -- files, links, directories, removals, users, units ---------------------------------------


def test_removals_protected_trees_and_dropped_paths(write_recipe: WriteRecipe, here: Path) -> None:
    # A trailing slash still names the system tree; the paths after it are still checked.
    text = HEAD + "remove-files: [/usr/lib/, /var/lib/x, /etc/issue]\n"
    path = write_recipe(text)
    assert report(path) == [
        f"{at(text, '/usr/lib/')}: remove-files[0]: removing /usr/lib/ would take the system's "
        "own files with it\n  hint: name the files or directories to remove",
        f"{at(text, '/var/lib/x')}: remove-files[1]: removing /var/lib/x from the image changes "
        "nothing on a host: a NestOS host takes only /usr and /etc from an image and keeps its "
        "own /var as it is\n"
        "  hint: to remove it on hosts, ship a tmpfiles.d fragment (an `r` or `R` line) under "
        "/usr/lib/tmpfiles.d; otherwise drop this entry",
    ]
    assert [p.code for p in errors(path)] == ["remove-system-tree", "remove-outside-image"]


def test_a_directory_where_a_link_is_made(write_recipe: WriteRecipe, here: Path) -> None:
    text = HEAD + "symlinks: [{path: /etc/x, target: /etc/y}]\ndirectories: [{path: /etc/x}]\n"
    [problem] = errors(write_recipe(text))
    assert (problem.code, problem.format()) == (
        "duplicate",
        f"{at(text, '/etc/x', 2)}: directories[0].path: /etc/x is also made by symlinks:\n"
        "  hint: keep one of them",
    )


@pytest.mark.parametrize(
    ("accounts", "where"),
    [("users: [{name: agent}]\n", "users"), ("groups: [{name: agents}]\n", "groups")],
)
def test_sysusers_on_newstart_warn(accounts: str, where: str, write_recipe: WriteRecipe) -> None:
    loaded = load_recipe(write_recipe(NEWSTART + accounts))
    [warning] = loaded.warnings
    assert (warning.path, warning.code, warning.severity) == (
        where,
        "sysusers-newstart",
        Severity.WARNING,
    )
    assert warning.message == (
        "users and groups become a sysusers.d fragment, applied when systemd boots"
    )
    assert warning.hint == "a NewStart container image that does not boot systemd never applies it"


def test_sysusers_on_nestos_do_not_warn(write_recipe: WriteRecipe) -> None:
    assert load_recipe(write_recipe(HEAD + "users: [{name: agent}]\n")).warnings == ()


def test_unsafe_source_paths_are_located_wherever_they_are_named(
    write_recipe: WriteRecipe, project: Path, here: Path
) -> None:
    for name in ("a b", "k b", "s b", "m b.ko", "x b.sh", "y b.sh"):
        (project / "files" / name).write_text("#!/bin/sh\n")
    path = write_recipe(
        HEAD
        + "systemd: {dropins: [{unit: a, src: 'files/a b'}]}\n"
        + "keys: ['files/k b']\n"
        + "signing: {scopes: [{scope: registry.example.com/x, key: 'files/s b'}]}\n"
        + "kernel-modules: [{name: m, src: 'files/m b.ko'}]\n"
        + "layers: [{name: a, script: ['files/x b.sh']}]\n"
        + "stages: [{name: b, from: 'quay.io/x/b:1', layers: [{name: c, script: ['files/y b.sh']}]}]\n"
        + "files: [{src: /out/m b.ko, dest: /usr/lib/m.ko, from: b}]\n"  # COPY --from: no mount
    )
    # (The signing key is no key at all: the signing rules say so too, by their own codes.)
    problems = [p for p in errors(path) if not p.code.startswith("signing-")]
    assert {p.code for p in problems} == {"unsafe-source-path"}
    text = path.read_text()
    named = [
        ("'files/a b'", "systemd.dropins[0].src"),
        ("'files/k b'", "keys[0]"),
        ("'files/s b'", "signing.scopes[0].key"),
        ("'files/m b.ko'", "kernel-modules[0].src"),
        ("'files/x b.sh'", "layers[0].script[0]"),
        ("'files/y b.sh'", "stages[0].layers[0].script[0]"),
    ]
    assert [f"{p.location} {p.path}" for p in problems] == [
        f"{at(text, needle)} {where}" for needle, where in named
    ]
    assert problems[0].message == (
        "'files/a b' cannot be passed into the build: blanks, commas and quotes would split "
        "the RUN's --mount option"
    )
    assert problems[0].hint == "rename it using letters, digits and . _ + @ = : % ~ / -"


def test_a_module_from_a_stage_is_copied_not_mounted(write_recipe: WriteRecipe) -> None:
    path = write_recipe(HEAD + STAGE + "kernel-modules: [{name: m, from: b, src: '/out/m b.ko'}]\n")
    assert load_recipe(path).warnings == ()


def test_layer_repo_ids_are_unique_across_layers(write_recipe: WriteRecipe, here: Path) -> None:
    repo = "{id: t, baseurl: 'https://r/', gpgkey: 'https://r/k'}"
    text = (
        HEAD
        + f"layers:\n  - {{name: a, install: [x], repos: [{repo}]}}\n"
        + f"  - {{name: b, install: [y], repos: [{repo}]}}\n"
    )
    [problem] = errors(write_recipe(text))
    assert (problem.code, problem.format()) == (
        "duplicate",
        f"{at(text, 't,', 2)}: layers[1].repos[0].id: repo id 't' is already used\n"
        "  hint: a layer's repo needs an id of its own",
    )


# -- names, versions, architecture, repos ----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "item", "value", "field"),
    [
        ("repos", "{id: t, baseurl: 'https://r/', gpgkey: 'https://r/k'}", "t,", "id"),
        ("files", "{src: files/motd, dest: /etc/motd}", "/etc/motd", "dest"),
        ("stages", "{name: s, from: 'quay.io/x/b:1'}", "s,", "name"),
        ("kernel-modules", "{name: m}", "m}", "name"),
    ],
)
def test_a_name_used_twice_points_at_the_first(
    key: str, item: str, value: str, field: str, write_recipe: WriteRecipe, here: Path
) -> None:
    # The same entry on lines 5 and 6: the second is reported, with the line of the first.
    text = HEAD + LAYER + f"{key}:\n  - {item}\n  - {item}\n"
    problems = [p for p in errors(write_recipe(text)) if p.code == "duplicate"]
    assert [p.format() for p in problems] == [
        f"{at(text, value, 2)}: {key}[1].{field}: {value.rstrip(',}')!r} is already used by "
        f"{key}[0] (line 5)\n"
        "  hint: includes are merged: the name may come from an included fragment"
    ]


def test_a_name_used_twice_names_the_line_of_the_first_name(
    write_recipe: WriteRecipe, here: Path
) -> None:
    # Entries written over several lines: "(line N)" is where the first `id: t` is written.
    repo = "  - baseurl: 'https://r/'\n    gpgkey: 'https://r/k'\n    id: {}\n"
    text = HEAD + LAYER + "repos:\n" + repo.format("a") + repo.format("t") + repo.format("t")
    [problem] = errors(write_recipe(text))
    first = at(text, "id: t").split(":")[1]
    assert (problem.path, problem.message) == (
        "repos[2].id",
        f"'t' is already used by repos[1] (line {first})",
    )
    assert first == "10"


@pytest.mark.parametrize(
    ("version", "problems"),
    [
        ("2022.15", ["layers[0].replace-from"]),
        ("2022.16", []),  # the first version that replaces from a repo
    ],
)
def test_replace_from_needs_2022_16(
    version: str, problems: list[str], write_recipe: WriteRecipe
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}, rpm-ostree: '{version}'}}\n"
        "layers: [{name: pin, replace-from: {repo: updates, packages: [toolbox]}}]\n"
    )
    if not problems:
        assert load_recipe(path).warnings == ()
        return
    [problem] = errors(path)
    assert (problem.path, problem.code) == (problems[0], "replace-from-unsupported")
    assert problem.hint == (
        "replace with RPM files by URL (replace:) where the base's rpm-ostree takes them"
    )


def test_rpm_files_install_from_2022_10(write_recipe: WriteRecipe) -> None:
    url = "https://repo.example.com/agent-1.2-1.x86_64.rpm"
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}, rpm-ostree: '2022.10'}}\n"
        f"layers: [{{name: a, install: ['{url}']}}]\n"
    )
    assert load_recipe(path).warnings == ()


def test_a_replaced_rpm_for_another_architecture(write_recipe: WriteRecipe, here: Path) -> None:
    url = "https://repo.example.com/bash-5.1-1.aarch64.rpm"
    text = HEAD + f"layers: [{{name: a, replace: ['{url}']}}]\n"
    [problem] = errors(write_recipe(text))
    assert (problem.code, problem.format()) == (
        "arch-mismatch",
        f"{at(text, repr(url))}: layers[0].replace[0]: this RPM is built for aarch64, "
        "the image is for x86_64",
    )


def test_a_repo_needs_some_url(write_recipe: WriteRecipe, here: Path) -> None:
    text = (
        HEAD
        + LAYER
        + "repos:\n  - {id: m, metalink: 'https://r/m', gpgkey: 'https://r/k'}\n"
        + "  - {id: l, mirrorlist: 'https://r/l', gpgkey: 'https://r/k'}\n"
        + "  - {id: none, gpgkey: 'https://r/k'}\n"
    )
    [problem] = errors(write_recipe(text))
    assert (problem.code, problem.format()) == (
        "repo-url",
        f"{at(text, '{id: none')}: repos[2]: repo 'none' has no baseurl, metalink or mirrorlist",
    )


def test_a_signed_repo_without_a_key_warns_with_what_to_do(write_recipe: WriteRecipe) -> None:
    path = write_recipe(HEAD + LAYER + "repos: [{id: t, baseurl: 'https://r/'}]\n")
    [warning] = load_recipe(path).warnings
    assert warning.message == "repo 't' checks signatures but names no gpgkey"
    assert warning.hint == "set gpgkey to the key's URL (or file:///etc/pki/rpm-gpg/...)"
    assert warning.severity is Severity.WARNING


# -- values, scripts, stages, kernel ---------------------------------------------------------


def test_unknown_values_are_located_wherever_they_are_written(
    write_recipe: WriteRecipe, project: Path, here: Path
) -> None:
    (project / "files" / "s.sh").write_text("#!/bin/sh\n")
    text = (
        HEAD
        + "layers:\n"
        + "  - {name: a, install: ['{{nope}}'], replace: ['https://r/{{nope}}.rpm']}\n"
        + "  - {name: b, run: [[echo, '{{nope}}']], script: [{path: files/s.sh, args: ['{{nope}}']}]}\n"
        + "  - {name: c, env: {E: '{{nope}}'}, install: [x]}\n"
        + "stages: [{name: s, from: 'quay.io/x/b:1', layers: [{name: d, run: [[echo, '{{nope}}']]}]}]\n"
        + "kernel-modules: [{name: m, options: 'x={{nope}}'}]\n"
        + "checks: {commands: [[echo, '{{nope}}']]}\n"
        + "tests: {commands: [{run: [echo, '{{nope}}']}]}\n"
    )
    problems = errors(write_recipe(text))
    assert {p.code for p in problems} == {"unknown-value"}
    assert {p.message for p in problems} == {"{{nope}} is not a build-time value"}
    paths = [
        "layers[0].install[0]",
        "layers[0].replace[0]",
        "layers[1].run[0][1]",
        "layers[1].script[0].args[0]",
        "layers[2].env.E",
        "stages[0].layers[0].run[0][1]",
        "kernel-modules[0].options",
        "checks.commands[0][1]",
        "tests.commands[0].run[1]",
    ]
    # Reported in the order written, each on the line of its {{nope}}.
    assert [(p.location.line, p.path) for p in problems] == [
        (int(at(text, "{{nope}}", n + 1).split(":")[1]), path) for n, path in enumerate(paths)
    ]


def test_build_values_may_wait_for_the_build_where_the_build_reads_them(
    write_recipe: WriteRecipe,
) -> None:
    """Module options, checks, tests and env are filled in by the build (or by `nestcustom
    test` in the image): {{kernel}} there is no problem."""
    path = write_recipe(
        HEAD
        + "layers: [{name: a, install: [x, 'kernel-devel-{{kernel}}'], env: {K: '{{kernel}}'},"
        + " run: [[depmod, '{{kernel}}']]}]\n"
        + "kernel-modules: [{name: m, options: 'dir={{kernel}}'}]\n"
        + "checks: {commands: [[ls, '/usr/lib/modules/{{kernel}}']]}\n"
        + "tests: {commands: [{run: [ls, '/usr/lib/modules/{{kernel}}']}]}\n"
    )
    assert load_recipe(path).warnings == ()


def test_a_layer_repo_cannot_hold_a_build_value(write_recipe: WriteRecipe, here: Path) -> None:
    repo = "{id: t, baseurl: 'https://r/{{kernel}}/', gpgkey: 'https://r/k'}"
    text = HEAD + f"layers: [{{name: a, install: [x], repos: [{repo}]}}]\n"
    [problem] = errors(write_recipe(text))
    assert (problem.code, problem.format()) == (
        "value-in-repo",
        f"{at(text, repr('https://r/{{kernel}}/'))}: layers[0].repos[0].baseurl: a repo file is "
        "copied as written: it cannot hold a value read in the build\n"
        "  hint: use dnf's own variables, $releasever and $basearch",
    )


def test_arch_in_a_destination_comes_from_arch_or_the_tag(write_recipe: WriteRecipe) -> None:
    # A base tag without an architecture: {{arch}} is known only from arch:.
    files = "files: [{src: files/motd, dest: '/etc/{{arch}}/motd'}]\n"
    with_arch = load_recipe(write_recipe(NEWSTART + "arch: aarch64\n" + files)).recipe
    assert with_arch.files[0].dest == "/etc/aarch64/motd"
    [problem] = errors(write_recipe(NEWSTART + files))
    assert (problem.path, problem.code) == ("files[0].dest", "value-in-path")


def test_base_version_of_an_image_without_a_registry(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        "name: r\nbase: {image: 'nestos:22.03-LTS-SP2.20230922.0-x86_64'}\n"
        "files: [{src: files/motd, dest: '/etc/{{base.version}}'}]\n"
    )
    assert load_recipe(path).recipe.files[0].dest == "/etc/22.03-LTS-SP2.20230922.0"


@pytest.mark.parametrize(
    ("shebang", "missing"),
    [
        ("#!/usr/bin/env python3", True),
        ("#!/usr/bin/env python3 -u", True),  # the kernel passes "python3 -u" as one argument
        ("#!/usr/bin/python3 -u", True),
        ("#!/usr/bin/env -S perl -w", True),  # env -S: the program is the first operand
        ("#!/usr/bin/env -u LANG PYTHONUTF8=1 python3", True),
        ("#!/usr/bin/env -S bash -eu", False),
        ("#!/usr/bin/env bash", False),
        ("#!/bin/bash -e", False),
        ("echo no shebang: sh", False),
    ],
)
def test_scripts_for_interpreters_nestos_lacks(
    shebang: str, missing: bool, write_recipe: WriteRecipe, project: Path, here: Path
) -> None:
    (project / "files" / "s").write_text(shebang + "\n")
    text = HEAD + "layers: [{name: a, script: [files/s]}]\n"
    path = write_recipe(text)
    if not missing:
        assert load_recipe(path).warnings == ()
        return
    [problem] = errors(path)
    assert (problem.code, problem.format()) == (
        "interpreter-missing",
        f"{at(text, 'files/s')}: layers[0].script[0]: files/s runs with {shebang[2:]}, "
        "which NestOS images do not have\n"
        "  hint: write it for sh or bash, or run it in a builder stage (stages:)",
    )


def test_files_from_an_image_need_no_stage(write_recipe: WriteRecipe, here: Path) -> None:
    # An image reference has a '/': it is not a stage name.
    files = "files: [{src: /usr/bin/tool, dest: /usr/bin/tool, from: 'quay.io/x/tools:1'}]\n"
    assert load_recipe(write_recipe(HEAD + files)).warnings == ()
    [problem] = errors(write_recipe(HEAD + files.replace("'quay.io/x/tools:1'", "tools")))
    assert (problem.code, problem.message, problem.hint) == (
        "unknown-stage",
        "no stage is named 'tools'",
        "stages: none; an image needs its registry/name",
    )


def test_a_project_module_need_not_be_loaded(write_recipe: WriteRecipe, project: Path) -> None:
    (project / "files" / "m.ko").write_bytes(b"")
    path = write_recipe(HEAD + "kernel-modules: [{name: m, src: files/m.ko, load: false}]\n")
    assert load_recipe(path).warnings == ()


KERNEL = "https://repo.example.com/kernel-5.10.0-182.x86_64.rpm"


@pytest.mark.parametrize(("version", "twice"), [("2022.17", False), ("2022.18", True)])
def test_regenerating_after_a_kernel_replace_rpm_ostree_already_did(
    version: str, twice: bool, write_recipe: WriteRecipe, here: Path
) -> None:
    text = (
        f"name: r\nbase: {{image: {BASE}, rpm-ostree: '{version}'}}\n"
        f"layers: [{{name: k, replace: ['{KERNEL}']}}]\ninitramfs: {{regenerate: true}}\n"
    )
    reported = warnings(write_recipe(text))
    assert reported == (
        [
            f"{at(text, 'true')}: initramfs.regenerate: warning: rpm-ostree {version} already "
            "regenerates the initramfs when the kernel is replaced\n"
            "  hint: drop initramfs: regenerate unless you add drivers"
        ]
        if twice
        else []
    )
    if twice:
        assert [w.code for w in load_recipe(write_recipe(text)).warnings] == ["initramfs-twice"]


def test_an_unknown_value_in_a_repo_is_reported_once(write_recipe: WriteRecipe) -> None:
    # {{nope}} is no value at all, so not one "read in the build" either.
    repo = "{id: t, baseurl: 'https://r/{{nope}}/', gpgkey: 'https://r/k'}"
    problems = errors(write_recipe(HEAD + LAYER + f"repos: [{repo}]\n"))
    assert [(p.path, p.code) for p in problems] == [("repos[0].baseurl", "unknown-value")]


def test_a_tree_copied_onto_usr_or_etc_reaches_the_host(
    write_recipe: WriteRecipe, here: Path
) -> None:
    """/usr and /etc themselves are what a host keeps: not "dropped"."""
    (here / "files" / "usr-tree" / "lib").mkdir(parents=True)
    (here / "files" / "usr-tree" / "lib" / "x.conf").write_text("x\n")
    (here / "files" / "etc-tree").mkdir()
    (here / "files" / "etc-tree" / "y.conf").write_text("y\n")
    text = (
        HEAD
        + "files:\n  - {src: files/usr-tree, dest: /usr}\n  - {src: files/etc-tree, dest: /etc}\n"
    )
    loaded = load_recipe(write_recipe(text))
    assert [spec.dest for spec in loaded.recipe.files] == ["/usr", "/etc"]
    assert loaded.warnings == ()


def test_a_missing_project_file_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(RecipeError) as caught:
        load_recipe(Path("fail") / "missing-file-only.yaml", project=FIXTURES)
    (problem,) = caught.value.problems
    assert (problem.code, problem.hint) == ("file", f"looked for {FIXTURES / 'files/no-such-file'}")


def test_an_include_cycle_is_told_how_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(RecipeError) as caught:
        load_recipe(Path("fail") / "include-cycle.yaml", project=FIXTURES)
    assert [p.hint for p in caught.value.problems] == ["remove one of these includes", None]


@pytest.mark.parametrize(
    ("version", "warned"), [("2022.8", True), ("2022.12", True), ("2022.13", False)]
)
def test_deletions_on_hosts_before_ostree_ext_0_8_4_are_named_once(
    write_recipe: WriteRecipe, here: Path, version: str, warned: bool
) -> None:
    """ostree-rs-ext applies a derived layer's whiteouts from 0.8.4 (rpm-ostree 2022.13):
    before, what a layer removes stays on the host (contract section 6)."""
    text = (
        f"name: r\nbase: {{image: {BASE}, rpm-ostree: '{version}'}}\n"
        "layers:\n  - {name: a, install: [strace]}\n  - {name: b, remove: [nano]}\n"
        "  - {name: c, remove: [vim-minimal]}\n"
    )
    found = [w for w in warnings(write_recipe(text)) if "do not apply what a layer deletes" in w]
    expected = (
        f"{at(text, '[nano]')}: layers[1].remove: warning: hosts of rpm-ostree {version} "
        "(ostree-rs-ext before 0.8.4) do not apply what a layer deletes: the files of the packages this "
        "layer removes or replaces stay on the host, beside .wh. marker files, although its rpm "
        "database lists them as gone\n  hint: use a base with rpm-ostree 2022.13 or later "
        "(NestOS 22.03 SP2), or leave the package installed and disable what it starts"
    )
    assert found == ([expected] if warned else [])
