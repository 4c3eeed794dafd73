"""Validation: every fixture's expected problems, at their lines and columns."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.rules_files import layer_count
from tests.conftest import BASE, FIXTURES, WriteRecipe

EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.*)$")
EXPECT_HINT = re.compile(r"^# expect-hint: (.*)$")
EXPECT_ELSEWHERE = re.compile(r"^# expect-file: (.*)$")  # a problem located in another file


def _expectations(path: Path) -> tuple[list[str], list[str]]:
    messages, hints = [], []
    display = os.path.relpath(path, FIXTURES)
    for line in path.read_text(errors="replace").splitlines():
        if match := EXPECT.match(line):
            messages.append(f"{display}:{match[1]}:{match[2]}: {match[3]}")
        elif match := EXPECT_ELSEWHERE.match(line):
            messages.append(match[1])
        elif match := EXPECT_HINT.match(line):
            hints.append(match[1])
    return messages, hints


FAIL = sorted((FIXTURES / "fail").glob("*.yaml"))
PASS = sorted((FIXTURES / "pass").glob("*.yaml"))


@pytest.mark.parametrize("path", FAIL, ids=[p.stem for p in FAIL])
def test_fail_fixture_reports_expected_problems(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)  # messages name files relative to the working directory
    messages, hints = _expectations(path)
    assert messages, f"{path.name} states no '# expect:' line"
    with pytest.raises(RecipeError) as caught:
        load_recipe(path.relative_to(FIXTURES), project=FIXTURES)
    reported = [p.format() for p in caught.value.problems]
    for message in messages:
        assert any(r.startswith(message) for r in reported), (message, reported)
    # ... and nothing else: a rule that fires where it should not is a defect too.
    unexpected = [r for r in reported if not any(r.startswith(m) for m in messages)]
    assert unexpected == [], f"{path.name} reports problems it does not expect"
    for hint in hints:
        assert any(f"hint: {hint}" in r for r in reported), (hint, reported)
    # Every error is located in a real file at a real line.
    for problem in caught.value.problems:
        assert problem.location.line >= 1 and problem.location.column >= 1


@pytest.mark.parametrize("path", PASS, ids=[p.stem for p in PASS])
def test_pass_fixture_loads_with_exactly_its_warnings(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    expected, _ = _expectations(path)
    loaded = load_recipe(path.relative_to(FIXTURES), project=FIXTURES)
    reported = [w.format() for w in loaded.warnings]
    assert len(reported) == len(expected), reported
    for message in expected:
        assert any(r.startswith(message) for r in reported), (message, reported)


def test_warnings_name_the_unsigned_repo_without_a_key(write_recipe: WriteRecipe) -> None:
    """gpgcheck on without a key warns; gpgcheck off warns once (not also about the key)."""
    path = write_recipe(
        "name: r\nbase: {image: x}\nlayers: [{name: a, install: [strace]}]\nrepos:\n"
        "  - {id: nokey, baseurl: 'https://r/'}\n"
        "  - {id: nocheck, baseurl: 'https://r/', gpgcheck: false}\n"
        "  - {id: good, baseurl: 'https://r/', gpgkey: 'https://r/k'}\n"
    )
    codes = [(w.path, w.code) for w in load_recipe(path).warnings]
    assert codes == [("repos[0]", "gpgkey-missing"), ("repos[1].gpgcheck", "gpgcheck-off")]


def test_rpms_from_an_image_without_a_digest_warn(write_recipe: WriteRecipe) -> None:
    """RPM files are installed without a signature check: like an unsigned repo, an image
    only a tag names warns, at its from:; a pinned image and a stage do not."""
    digest = "@sha256:" + "0" * 64
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "stages: [{name: build, from: registry.example.com/b:1, layers: [{name: b, run: [[make]]}]}]\n"
        "layers:\n"
        "  - name: a\n"
        "    install:\n"
        "      - {from: registry.example.com/rpms/zfs:41, path: /rpms/*.rpm}\n"
        f"      - {{from: 'registry.example.com/rpms/zfs:41{digest}', path: /rpms/*.rpm}}\n"
        "      - {from: build, path: /out/*.rpm}\n"
    )
    warnings = load_recipe(path).warnings
    assert [(w.path, w.code) for w in warnings] == [
        ("layers[0].install[0].from", "rpm-image-unpinned")
    ]
    assert (warnings[0].location.line, warnings[0].location.column) == (7, 16)
    assert warnings[0].message == (
        "RPM files from registry.example.com/rpms/zfs:41 are installed without a signature "
        "check, and a tag can be moved to other files"
    )


def test_a_kernel_module_after_a_layers_initramfs_step_warns_once(
    project: Path, write_recipe: WriteRecipe
) -> None:
    """kernel-modules: run after every layer: a layer's dracut misses the module. That is
    one warning at the module, with what to do about kernel modules (not files:)."""
    (project / "files" / "nc_demo.ko").write_bytes(b"")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers: [{name: a, install: [strace], steps: [{initramfs: {drivers: [nc_demo]}}]}]\n"
        "kernel-modules:\n"
        "  - {name: nc_demo, src: files/nc_demo.ko, load: true, options: a=1}\n"
        "  - {name: nc_other, load: true}\n"
    )
    warnings = load_recipe(path).warnings
    assert [(w.path, w.code) for w in warnings] == [
        ("kernel-modules[0]", "read-before-write"),
        ("kernel-modules[1]", "read-before-write"),
    ]
    assert warnings[0].message == (
        "kernel module 'nc_demo' is installed after dracut ran (layers[0].steps[0].initramfs, "
        "line 3): kernel-modules: come after every layer, so the initramfs will not have it"
    )
    assert warnings[0].hint == (
        "regenerate the initramfs after them instead: initramfs: {regenerate: true, "
        "drivers: [...]} at the top level runs after kernel-modules:"
    )


def test_include_merge_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    recipe = load_recipe(Path("pass/everything.yaml"), project=FIXTURES).recipe
    # Lists concatenate, fragment first; mappings merge and the including file wins.
    assert [layer.name for layer in recipe.layers] == [
        "shared-base",
        "debug-tools",
        "slim",
        "editor",
    ]
    assert dict(recipe.labels) == {
        "org.example.team": "platform",
        "org.opencontainers.image.vendor": "Example Corp",
    }
    assert recipe.units_enable == ("sshd.service", "chronyd.service")
    assert recipe.files[0].mode == "0644"  # "644" is normalised


def test_a_command_reading_a_path_a_later_step_writes_warns_at_the_write(
    project: Path, write_recipe: WriteRecipe
) -> None:
    """chmod in a layer runs before the top-level files: step that installs its argument;
    a program that reads nothing of its own is judged by the paths it is given."""
    (project / "files" / "run").write_text("#!/bin/sh\n")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers: [{name: a, run: [[chmod, '0755', /usr/lib/agent/run], [chmod, -R, go-w]]}]\n"
        "files: [{src: files/run, dest: /usr/lib/agent/run}]\n"
    )
    (warning,) = load_recipe(path).warnings
    assert (warning.path, warning.code, warning.location.line) == (
        "files[0].dest",
        "read-before-write",
        4,
    )
    assert warning.message == (
        "/usr/lib/agent/run is written after chmod ran (layers[0].run[0], line 3), "
        "which reads /usr/lib/agent/run: it will not see it"
    )


def test_several_includes_merge_in_the_order_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    recipe = load_recipe(Path("pass/two-includes.yaml"), project=FIXTURES).recipe
    assert [layer.name for layer in recipe.layers] == ["from-first", "from-second", "own"]
    # A later fragment wins over an earlier one for a key both set.
    assert dict(recipe.labels) == {"org.example.team": "second", "org.example.first": "yes"}


def test_non_utf8_is_located(write_recipe: WriteRecipe) -> None:
    path = write_recipe("name: x\n")
    path.write_bytes(b"name: x\ndescription: caf\xe9\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    problem = caught.value.problems[0]
    assert (problem.location.line, problem.location.column) == (2, 17)
    assert "not valid UTF-8" in problem.message


def test_huge_file_is_refused_before_parsing(write_recipe: WriteRecipe) -> None:
    path = write_recipe("name: x\n" + "# padding\n" * 120_000)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert "recipes are limited to 1 MiB" in caught.value.problems[0].message


def test_alias_bomb_is_refused(write_recipe: WriteRecipe) -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        rows.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    path = write_recipe("\n".join(rows) + "\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert "more than 100000 values" in caught.value.problems[0].message


def test_too_many_layers(write_recipe: WriteRecipe) -> None:
    layers = "".join(f"  - {{name: l{i}, install: [p{i}]}}\n" for i in range(61))
    path = write_recipe(f"name: many\nbase: {{image: x}}\nlayers:\n{layers}")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    [problem] = caught.value.problems
    # 61 layers and the check step every NestOS recipe ends with.
    assert problem.format().startswith(
        f"{os.path.relpath(path)}:64:5: layers[60]: the image gets 62 layers on top of its base;"
        " at most 60 fit"
    )


def test_130_files_share_one_step(write_recipe: WriteRecipe, project: Path) -> None:
    # A real recipe with 130 files used to render 141 layers and fail to build.
    (project / "files" / "many").mkdir()
    entries = []
    for i in range(130):
        (project / "files" / "many" / f"f{i}.conf").write_text(f"{i}\n")
        entries.append(f"  - {{src: files/many/f{i}.conf, dest: /etc/many/f{i}.conf}}\n")
    path = write_recipe(
        f"name: many\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [x]}}]\n"
        "files:\n" + "".join(entries)
    )
    loaded = load_recipe(path)
    assert layer_count(loaded.recipe) == 3  # the layer, the files step, the check step
    text = render_containerfile(loaded.recipe, "c").containerfile
    image = text.split("\nFROM ")[-1]
    assert [line.split()[0] for line in image.splitlines() if line[:4] in ("RUN ", "COPY")] == [
        "RUN",
        "RUN",
        "RUN",
    ]
    assert text.count("--copy") == 130


def test_all_problems_reported_at_once(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        "name: Bad\nbase: {image: x, flavor: nope}\nlayers:\n  - {name: a, install: ['a b']}\n"
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert [p.path for p in caught.value.problems] == [
        "name",
        "base.flavor",
        "layers[0].install[0]",
    ]


def test_a_trailing_newline_does_not_slip_past_a_pattern(write_recipe: WriteRecipe) -> None:
    """JSON Schema's `$` is the very end; Python's would accept "name\\n" (and so a
    second line in a label, a unit name, a path)."""
    path = write_recipe(
        'name: "good\\n"\nbase: {image: x}\nlayers: [{name: a, install: ["strace\\n"]}]\n'
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert [p.path for p in caught.value.problems] == ["name", "layers[0].install[0]"]


def test_the_compiled_validator_is_kept_between_runs_and_a_bad_copy_is_replaced(
    tmp_path: Path,
) -> None:
    """The second run reads the validator fastjsonschema generated in the first; a cache
    that cannot be read or written never changes what validation says."""
    import os
    import subprocess
    import sys

    def validate(cache: Path, recipe: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
        argv = [sys.executable, "-m", "nestcustom", "--project", str(FIXTURES)]
        argv += ["validate", recipe]
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=FIXTURES)

    cache = tmp_path / "cache"
    assert validate(cache, "pass/everything.yaml").returncode == 0
    [kept] = (cache / "nestcustom").glob("recipe-validator-*.marshal")
    first = kept.stat().st_mtime_ns
    assert validate(cache, "fail/typo-key.yaml").returncode == 2
    assert kept.stat().st_mtime_ns == first  # read, not written again
    kept.write_bytes(b"not marshal data")
    bad = validate(cache, "fail/typo-key.yaml")
    assert bad.returncode == 2 and "unknown key" in bad.stdout + bad.stderr
    assert kept.read_bytes() != b"not marshal data"  # compiled again and replaced
    unusable = tmp_path / "a-file"  # (root may write anywhere: a file is no directory to it)
    unusable.write_text("")
    assert validate(unusable, "pass/everything.yaml").returncode == 0


def test_the_digest_follows_where_a_layers_rpm_files_come_from(write_recipe: WriteRecipe) -> None:
    def digest(install: str) -> str:
        path = write_recipe(
            f"name: r\nbase: {{image: {BASE}}}\n"
            "layers:\n"
            "  - name: a\n"
            f"    install: [strace, {install}]\n"
        )
        return load_recipe(path).recipe.digest

    image = "'registry.example.com/rpms/zfs:41@sha256:" + "0" * 64 + "'"
    digests = {
        digest(f"{{from: {image}, path: /rpms/*.rpm}}"),
        digest(f"{{from: {image}, path: /rpms/zfs-*.rpm}}"),
        digest(f"{{from: {image.replace('0' * 64, '1' * 64)}, path: /rpms/*.rpm}}"),
        digest("jq"),
    }
    assert len(digests) == 4
