"""A RUN step mounts every project file it reads, at a path named by the file's content:
the step finds its files, and editing one changes the step (podman's cache key), so the
step runs again. Checked on the rendered steps' structure, not on golden text."""

from __future__ import annotations

import re
from pathlib import Path

from nestcustom.containerfile.render import render_containerfile
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

RECIPE = f"""\
name: r
base: {{image: {BASE}}}
layers:
  - name: a
    install: [strace]
    files: [{{src: files/motd, dest: /etc/motd}}]
    script: [{{path: scripts/setup.sh}}]
"""


def layer_run(project: Path, path: Path) -> str:
    text = render_containerfile(load_recipe(path, project).recipe, "containerfiles/r").containerfile
    joined = text.replace("\\\n", "")
    return next(
        line for line in joined.splitlines() if line.startswith("RUN ") and "strace" in line
    )


def mounted(run: str) -> dict[str, str]:
    """target -> source of each bind mount of the step."""
    found = re.findall(r"--mount=type=bind,source=([^,\s]+),target=([^,\s]+)", run)
    return {target: source for source, target in found}


def setup(project: Path) -> None:
    (project / "files").mkdir(exist_ok=True)
    (project / "files" / "motd").write_text("hello\n")
    (project / "scripts").mkdir(exist_ok=True)
    (project / "scripts" / "setup.sh").write_text("#!/bin/sh\necho setup\n")


def test_every_path_the_step_reads_under_run_nestcustom_is_mounted(
    project: Path, write_recipe: WriteRecipe
) -> None:
    setup(project)
    run = layer_run(project, write_recipe(RECIPE))
    mounts = mounted(run)
    command = run.split(" sh ", 1)[1]
    used = set(re.findall(r"/run/nestcustom/\S+", command))
    assert used and used <= set(mounts), used - set(mounts)
    assert sorted(mounts.values()) == [
        "containerfiles/nestcustom-build.sh", "files/motd", "scripts/setup.sh"
    ]  # fmt: skip


def test_editing_a_script_or_a_file_changes_the_step(
    project: Path, write_recipe: WriteRecipe
) -> None:
    setup(project)
    path = write_recipe(RECIPE)
    before = layer_run(project, path)
    (project / "scripts" / "setup.sh").write_text("#!/bin/sh\necho setup, changed\n")
    after_script = layer_run(project, path)
    (project / "files" / "motd").write_text("hello, changed\n")
    after_file = layer_run(project, path)
    assert len({before, after_script, after_file}) == 3
    # Each under its own name still, so its messages ($0) say which it is.
    assert "/setup.sh" in after_script and "/motd" in after_file
