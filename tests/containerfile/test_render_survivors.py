"""Rendered Containerfile lines the golden files alone pinned (the mutation run leaves the
goldens out): the RPM stage of a layer, the facts stage, repos with credentials and the
sysusers.d fragment, each asserted as the exact text a user reviews."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.containerfile.commands import HELPER
from nestcustom.containerfile.generated import render_sysusers, sysusers_file
from nestcustom.containerfile.render import Rendering, Step, render_containerfile
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

MOUNT_HELPER = f"RUN --mount=type=bind,source=containerfiles/nestcustom-build.sh,target={HELPER} \\"


def _render(path: Path) -> Rendering:
    return render_containerfile(load_recipe(path).recipe, "containerfiles/r")


def _block(text: str, first: str) -> list[str]:
    """The lines from `first` up to the next blank line."""
    lines = text.splitlines()
    start = lines.index(first)
    end = lines.index("", start)
    return lines[start:end]


def test_a_layers_rpm_stage_copies_each_source_and_lists_the_files(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "stages:\n  - {name: bld, from: registry.example.com/b:1, "
        "layers: [{name: one, run: [[make]]}]}\n"
        "layers:\n  - name: z\n    install:\n"
        "      - {from: bld, path: /out/a.rpm}\n"
        "      - {from: registry.example.com/k:2, path: /rpms/k.rpm}\n"
    )
    rendering = _render(path)
    text = rendering.containerfile
    assert _block(text, "# RPM files for layer z") == [
        "# RPM files for layer z",
        f"FROM {BASE} AS nestcustom-rpms-0",
        "COPY --from=bld --chmod=0644 /out/a.rpm /nestcustom-rpms/0/",
        "COPY --from=registry.example.com/k:2 --chmod=0644 /rpms/k.rpm /nestcustom-rpms/1/",
    ]
    after = text.split("COPY --from=registry.example.com/k:2", 1)[1].split("\n\n")[1]
    assert after.splitlines() == [
        MOUNT_HELPER,
        f"    sh {HELPER} rpm-list /nestcustom-rpms",
    ]
    stage = [s for s in rendering.steps if s.stage == "nestcustom-rpms-0"]
    assert [(s.name, s.program) for s in stage] == [
        ("stage nestcustom-rpms-0", ""),
        ("stage nestcustom-rpms-0 rpms bld:/out/a.rpm", ""),
        ("stage nestcustom-rpms-0 rpms registry.example.com/k:2:/rpms/k.rpm", ""),
        ("stage nestcustom-rpms-0 list", "nestcustom rpm-list"),
    ]
    # The stage's first step points at the layer in the recipe, for a failure's message.
    layer = next(s for s in rendering.steps if s.name == "layer z")
    assert stage[0].origin == layer.origin
    assert layer.origin.endswith("recipes/r.yaml:6:5")


def test_a_stage_that_needs_the_bases_values_gets_the_facts_stage(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "stages:\n  - {name: bld, from: registry.example.com/b:1, "
        "layers: [{name: one, run: [[make, '{{kernel}}']]}]}\n"
        "layers:\n  - {name: z, install: [strace]}\n"
    )
    rendering = _render(path)
    lines = rendering.containerfile.splitlines()
    assert lines[2:7] == [
        f"FROM {BASE} AS nestcustom-facts",
        "",
        "# the base image's values, for the stages below",
        MOUNT_HELPER,
        f"    sh {HELPER} facts /nestcustom-facts",
    ]
    assert "COPY --from=nestcustom-facts /nestcustom-facts /nestcustom-facts" in lines
    assert rendering.steps[:2] == (
        Step("stage nestcustom-facts", stage="nestcustom-facts"),
        Step("facts", stage="nestcustom-facts", program="nestcustom facts"),
    )
    assert any(f.path == "containerfiles/nestcustom-build.sh" for f in rendering.files)


def test_a_stage_installing_with_its_own_package_manager_needs_no_facts_stage(
    write_recipe: WriteRecipe,
) -> None:
    """A builder stage's `install:` is its dnf's, not the base's rpm-ostree: no helper, so
    no facts stage and no extra FROM of the base."""
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "stages:\n  - {name: plain, from: registry.example.com/p:1, "
        "layers: [{name: two, install: [gcc]}]}\n"
        "layers:\n  - {name: z, install: [strace]}\n"
    )
    text = _render(path).containerfile
    assert "nestcustom-facts" not in text
    assert _block(text, "# stage plain") == [
        "# stage plain",
        "FROM registry.example.com/p:1 AS plain",
    ]
    assert "RUN dnf -y install gcc && dnf clean all" in text.splitlines()


def test_a_repo_with_a_secret_is_written_by_the_helpers_repo_auth(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "layers:\n  - name: z\n    install: [strace]\n"
        "    repos: [{id: priv, baseurl: 'https://r.example.com/x', secret: repocred}]\n"
    )
    rendering = _render(path)
    repo = next(f for f in rendering.files if f.name == "layer-z-priv.repo")
    assert repo.path == "containerfiles/r/layer-z-priv.repo"
    assert "password" not in repo.content and "repocred" not in repo.content
    text = rendering.containerfile
    run = text.split("# layer z\n", 1)[1].split("\n\n", 1)[0]
    digest = run.split("/run/nestcustom/repos/", 1)[1].split("/", 1)[0]
    assert run.splitlines() == [
        MOUNT_HELPER,
        "    --mount=type=bind,source=containerfiles/r/layer-z-priv.repo,"
        f"target=/run/nestcustom/repos/{digest}/priv.repo \\",
        "    --mount=type=secret,id=repocred \\",
        f"    sh {HELPER} repo-auth \\",
        f"        /run/nestcustom/repos/{digest}/priv.repo \\",
        "        /run/secrets/repocred \\",
        f"        /etc/yum.repos.d/nestcustom-z-priv-{digest}.repo \\",
        f"    && sh {HELPER} clamp rpm-ostree install strace \\",
        f"    && rm -f /etc/yum.repos.d/nestcustom-z-priv-{digest}.repo \\",
        "    && rm -rf /var/cache \\",
        "    && ostree container commit",
    ]


def test_sysusers_fragment_writes_a_dash_for_what_the_recipe_leaves_out(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "users:\n  - {name: alice}\n"
        "groups:\n  - {name: ops}\n"
    )
    assert render_sysusers(load_recipe(path).recipe) == (
        "# Generated by nestcustom from recipes/r.yaml. Do not edit.\ng ops -\nu alice - - - -\n"
    )


def test_sysusers_fragment_writes_ids_description_and_members(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\n"
        "users:\n  - {name: alice, uid: 1500, group: ops, description: Alice Admin, "
        "home: /var/home/alice, shell: /bin/bash}\n"
        "groups:\n  - {name: ops, gid: 1500, members: [alice]}\n"
    )
    assert render_sysusers(load_recipe(path).recipe) == (
        "# Generated by nestcustom from recipes/r.yaml. Do not edit.\n"
        "g ops 1500\n"
        'u alice 1500:ops "Alice Admin" /var/home/alice /bin/bash\n'
        "m alice ops\n"
    )


@pytest.mark.parametrize(
    ("accounts", "lines"),
    [
        ("users:\n  - {name: alice}\n", ["u alice - - - -"]),
        ("groups:\n  - {name: ops}\n", ["g ops -"]),
        ("directories:\n  - {path: /etc/agent}\n", None),
    ],
)
def test_a_recipe_with_only_users_or_only_groups_gets_its_sysusers_fragment(
    write_recipe: WriteRecipe, accounts: str, lines: list[str] | None
) -> None:
    path = write_recipe(f"name: r\nbase: {{image: {BASE}}}\n{accounts}")
    files = sysusers_file(load_recipe(path).recipe)
    if lines is None:
        assert files == []
        return
    ((_, text, dest),) = files
    assert dest == "/usr/lib/sysusers.d/nestcustom-r.conf"
    assert text.splitlines()[1:] == lines


def test_recipes_are_the_yaml_files_directly_in_the_directory(tmp_path: Path) -> None:
    from nestcustom.containerfile.outputs import find_recipes

    for name in ("b.yml", "a.yaml", "README.md", "notes.yaml.orig"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "common.yaml").mkdir()  # a directory, even one named like a recipe
    (tmp_path / "common.yaml" / "inner.yaml").write_text("x\n")
    assert find_recipes(tmp_path) == [tmp_path / "a.yaml", tmp_path / "b.yml"]
