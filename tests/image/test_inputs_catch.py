"""The keys that let recipes sharing first steps build them once (build --jobs): equal
for the steps two recipes share, different from the first step where they part, and
different for a step whose project file changed."""

from __future__ import annotations

from pathlib import Path

from nestcustom.image.inputs import ImageInputs, image_inputs, provenance, step_keys
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe


def inputs_of(write_recipe: WriteRecipe, project: Path, name: str, body: str) -> ImageInputs:
    recipe = load_recipe(
        write_recipe(f"name: {name}\nbase: {{image: {BASE}}}\n{body}", name)
    ).recipe
    return image_inputs(recipe, project, {BASE: "0" * 64}, provenance(project))


def keyed(inputs: ImageInputs) -> dict[str, str]:
    return dict(zip((s.name for s in inputs.rendering.steps), step_keys(inputs), strict=True))


def test_recipes_share_the_keys_of_the_steps_they_share_only(
    write_recipe: WriteRecipe, project: Path
) -> None:
    tools = "  - {name: tools, install: [strace]}\n"
    web = keyed(
        inputs_of(
            write_recipe, project, "web", f"layers:\n{tools}  - {{name: web, install: [nginx]}}\n"
        )
    )
    db = keyed(
        inputs_of(
            write_recipe,
            project,
            "db",
            f"layers:\n{tools}  - {{name: db, install: [postgresql]}}\n",
        )
    )
    assert list(web) == ["base", "layer tools", "layer web", "checks", "labels"]
    assert (web["base"], web["layer tools"]) == (db["base"], db["layer tools"])
    assert web["layer web"] != db["layer db"]


def test_a_changed_project_file_changes_its_steps_key_not_the_ones_before(
    write_recipe: WriteRecipe, project: Path
) -> None:
    body = "layers:\n  - {name: tools, install: [strace]}\nfiles: [{src: files/motd, dest: /etc/motd}]\n"
    before = keyed(inputs_of(write_recipe, project, "r", body))
    (project / "files" / "motd").write_text("changed\n")
    after = keyed(inputs_of(write_recipe, project, "r", body))
    assert [name for name in before if before[name] != after[name]] == ["files", "labels"]
