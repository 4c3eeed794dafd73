"""Rendering: golden Containerfiles, the manual's exact form, quoting, determinism."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nestcustom.containerfile.commands import HELPER
from nestcustom.containerfile.outputs import find_drift, find_recipes, load_recipes, plan_outputs
from nestcustom.containerfile.render import render_containerfile
from nestcustom.containerfile.steps import HELPER_FILE
from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, FIXTURES, ROOT, WriteRecipe

GOLDEN = Path(__file__).resolve().parent / "golden"
PASS = sorted((FIXTURES / "pass").glob("*.yaml"))
UPDATE = os.environ.get("NESTCUSTOM_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("path", PASS, ids=[p.stem for p in PASS])
def test_golden_containerfile(path: Path) -> None:
    """Any change to rendering shows up here, and so in review.

    Regenerate with NESTCUSTOM_UPDATE_GOLDEN=1 after an intended change.
    """
    recipe = load_recipe(path, project=FIXTURES).recipe
    rendering = render_containerfile(recipe, f"containerfiles/{recipe.name}")
    outputs = {"Containerfile": rendering.containerfile}
    # The build helper is package data, the same for every recipe: not a golden of each.
    outputs.update({f.name: f.content for f in rendering.files if f.name != HELPER_FILE})
    for name, content in outputs.items():
        golden = GOLDEN / path.stem / name
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(content)
        assert golden.read_text() == content, f"{golden} differs; see the docstring"


def test_committed_containerfiles_are_fresh() -> None:
    """containerfiles/ must be what recipes/ renders to (the GitOps contract)."""
    loaded = load_recipes(find_recipes(ROOT / "recipes"), ROOT)
    plan = plan_outputs(loaded, ROOT, ROOT / "containerfiles")
    assert find_drift(plan) == [], "run `nestcustom render --all` and commit"


def test_manual_example_renders_as_documented() -> None:
    """The manual's layer (rpm-ostree install, rm -rf /var/cache, ostree container commit),
    rpm-ostree run by the build helper, which then fixes the rpmdb's install times."""
    recipe = load_recipe(ROOT / "recipes" / "nestos-strace.yaml").recipe
    text = render_containerfile(recipe, "containerfiles/nestos-strace").containerfile
    assert "FROM hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP2.20230922.0-aarch64\n" in text
    assert _runs(text)[0] == [
        "sh", HELPER, "clamp", "rpm-ostree", "install", "strace",
        "&&", "rm", "-rf", "/var/cache", "&&", "ostree", "container", "commit",
    ]  # fmt: skip


def _runs(text: str) -> list[list[str]]:
    """RUN instructions as buildah sees them: continuations joined, --mount flags apart, then
    shell words."""
    joined = text.replace("\\\n", "")
    runs = [shlex.split(line[4:]) for line in joined.splitlines() if line.startswith("RUN ")]
    return [[w for w in words if not w.startswith("--mount=")] for words in runs]


def test_every_nestos_run_ends_with_commit(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n  - {name: a, install: [strace]}\n  - {name: b, remove: [toolbox]}\n"
        "systemd: {enable: [chronyd.service]}\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    runs = _runs(text)
    assert len(runs) == 4  # two layers, the units, the build's checks
    assert all(words[-4:] == ["&&", "ostree", "container", "commit"] for words in runs)


def test_order_and_duplicates_do_not_change_output(write_recipe: WriteRecipe) -> None:
    one = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: a, install: [b, a, c]}}\n", "one"
    )
    two = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: a, install: [c, a, b, a]}}\n",
        "two",
    )
    first = render_containerfile(load_recipe(one).recipe, "c").containerfile
    second = render_containerfile(load_recipe(two).recipe, "c").containerfile
    assert first.replace("recipes/one.yaml", "X") == second.replace("recipes/two.yaml", "X")


def test_url_with_shell_characters_stays_one_argument(write_recipe: WriteRecipe) -> None:
    url = "https://repo.example.com/get?a=1&b=$(reboot);x=(id)/agent-1.0-1.x86_64.rpm"
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - name: a\n    replace: ['{url}']\n"
    )
    words = _runs(render_containerfile(load_recipe(path).recipe, "c").containerfile)[0]
    assert words[:7] == ["sh", HELPER, "clamp", "rpm-ostree", "override", "replace", url]


def test_long_layers_wrap_one_package_per_line(write_recipe: WriteRecipe) -> None:
    packages = [f"package-number-{i}" for i in range(8)]
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: a, install: [{', '.join(packages)}]}}\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    assert f"    sh {HELPER} clamp rpm-ostree install \\\n        package-number-0 \\\n" in text
    assert all(
        len(line) <= 100
        for line in text.splitlines()
        if not line.startswith(("#", "LABEL", "      ", "RUN --mount=", "    --mount="))
    )
    assert _runs(text)[0] == [
        "sh",
        HELPER,
        "clamp",
        "rpm-ostree",
        "install",
        *packages,
        "&&",
        "rm",
        "-rf",
        "/var/cache",
        "&&",
        "ostree",
        "container",
        "commit",
    ]


def test_newstart_uses_dnf_without_ostree(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        "name: r\nbase: {image: localhost/newstart:v6, flavor: newstart}\n"
        "layers:\n  - {name: a, install: [strace], remove: [cronie]}\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    assert _runs(text) == [
        [
            "dnf",
            "-y",
            "remove",
            "cronie",
            "&&",
            "dnf",
            "-y",
            "install",
            "strace",
            "&&",
            "dnf",
            "clean",
            "all",
        ]
    ]
    assert "ostree" not in text and "rpm-ostree" not in text


def test_label_values_cannot_expand_variables(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [x]}}]\n"
        "labels: {org.example.note: 'costs $HOME \"quoted\"'}\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    assert 'org.example.note="costs \\$HOME \\"quoted\\""' in text


def test_digest_pins_from_and_changes_with_files(write_recipe: WriteRecipe, project: Path) -> None:
    digest = "sha256:" + "ab" * 32
    text = (
        f"name: r\nbase: {{image: {BASE}, digest: '{digest}'}}\nlayers: [{{name: a, install: [x]}}]\n"
        "files: [{src: files/motd, dest: /etc/motd}]\n"
    )
    path = write_recipe(text)
    before = load_recipe(path).recipe
    assert f"FROM {BASE}@{digest}\n" in render_containerfile(before, "c").containerfile
    (project / "files" / "motd").write_text("changed\n")
    after = load_recipe(path).recipe
    assert before.digest != after.digest


def test_disabled_repo_renders_disabled(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [x]}}]\nrepos:\n"
        "  - {id: off-by-default, baseurl: 'https://r/', gpgkey: 'https://r/k', enabled: false}\n"
        "  - {id: default-on, baseurl: 'https://r/', gpgkey: 'https://r/k'}\n"
    )
    files = render_containerfile(load_recipe(path).recipe, "c").files
    [repo_file] = [f for f in files if f.name == "nestcustom.repo"]
    sections = repo_file.content.split("\n\n")
    assert "[off-by-default]" in sections[1] and "enabled=0" in sections[1]
    assert "[default-on]" in sections[2] and "enabled=1" in sections[2]


def test_label_keys_are_text_as_written(write_recipe: WriteRecipe) -> None:
    """YAML 1.1 would read these keys as booleans and a float; a label key is text."""
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [x]}}]\n"
        "labels: {on: a, no: b, 1.10: c, yes: d}\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    for line in ('on="a"', 'no="b"', '1.10="c"', 'yes="d"'):
        assert f"      {line}" in text


def test_non_ascii_label_values_stay_readable(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [x]}}]\n"
        "labels: {org.example.owner: 'Zoë Müller, 运维'}\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    assert 'org.example.owner="Zoë Müller, 运维"' in text


def test_copy_takes_the_json_form_for_unusual_paths(
    write_recipe: WriteRecipe, project: Path
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [x]}}]\n"
        "stages: [{name: s, from: 'quay.io/x/y:1', layers: [{name: b, run: [[make]]}]}]\n"
        "files:\n  - {src: /out/tool, dest: /usr/bin/tool, from: s, mode: '0755'}\n"
        "  - {src: '/out/my tool', dest: /usr/bin/mine, from: s, mode: '0755'}\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    assert "\nCOPY --from=s --chmod=0755 /out/tool /usr/bin/tool\n" in text
    assert '\nCOPY --from=s --chmod=0755 ["/out/my tool", "/usr/bin/mine"]\n' in text


def test_a_project_file_with_a_blank_is_refused_not_mounted(
    write_recipe: WriteRecipe, project: Path
) -> None:
    # A project file is bind-mounted into the files step; a blank or comma in its path
    # would split the --mount option, so it is refused where it is written.
    (project / "files" / "my motd").write_text("x\n")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "files:\n  - {src: 'files/my motd', dest: /etc/motd.d/mine, mode: '0600'}\n"
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    [problem] = caught.value.problems
    assert problem.path == "files[0].src"
    assert "'files/my motd' cannot be passed into the build" in problem.message


@pytest.mark.parametrize(("width", "wrapped"), [(100, False), (101, True)])
def test_run_lines_wrap_only_past_100_columns(
    write_recipe: WriteRecipe, width: int, wrapped: bool
) -> None:
    fixed = len("RUN echo  && ostree container commit")
    name = "p" * (width - fixed)
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, run: [[echo, {name}]]}}]\n"
    )
    text = render_containerfile(load_recipe(path).recipe, "c").containerfile
    run = next(line for line in text.splitlines() if line.startswith("RUN "))
    assert (run.endswith("\\")) is wrapped
    if not wrapped:
        assert len(run) == width


RENDER_ALL = """
import sys
from pathlib import Path
from nestcustom.containerfile.render import render_containerfile
from nestcustom.containerfile.steps import HELPER_FILE
from nestcustom.recipe.load import load_recipe
for arg in sys.argv[2:]:
    recipe = load_recipe(Path(arg), project=Path(sys.argv[1])).recipe
    rendering = render_containerfile(recipe, "containerfiles/" + recipe.name)
    sys.stdout.write(rendering.containerfile)
    for generated in rendering.files:
        sys.stdout.write(generated.content)
"""


def test_rendering_does_not_depend_on_the_hash_seed() -> None:
    """Set and dict order differ between processes with other hash seeds; output must not."""
    recipes = [*PASS, *sorted((ROOT / "recipes").glob("*.yaml"))]
    outputs = set()
    for seed in ("0", "1", "4242"):
        done = subprocess.run(
            [sys.executable, "-c", RENDER_ALL, str(ROOT), *map(str, recipes)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=ROOT,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
