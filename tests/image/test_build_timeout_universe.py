"""A step that hangs: `build --step-timeout` and a recipe's `step-timeout:` stop it and fail
its build, which names the step; builds beside it go on."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.image.universe import (
    containers_from,
    image_exists,
    nestcustom,
    own_base,
    podman,
    project,
    tag,
)

pytestmark = pytest.mark.universe
__all__ = ["own_base", "project", "tag"]


def recipe(project: Path, name: str, base: str, seconds: int, extra: str = "") -> None:
    (project / "recipes" / f"{name}.yaml").write_text(
        f'name: {name}\nbase: {{image: "{base}"}}\n{extra}'
        f"layers:\n  - name: wait\n    run: [[sleep, '{seconds}']]\n"
    )


def test_a_step_past_the_timeout_is_stopped_and_fails_its_build(
    project: Path, own_base: tuple[str, str], tag: str
) -> None:
    base, base_id = own_base
    recipe(project, "hangs", base, 600)
    started = time.monotonic()
    result = nestcustom(
        "build", "recipes/hangs.yaml", "--tag", tag, "--step-timeout", "3", cwd=project
    )
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert (
        "error: hangs: layer wait (recipes/hangs.yaml:4:5) failed at step 2/4: "
        "ran longer than 3 s, the step timeout; it was stopped"
    ) in result.stderr
    assert "--step-timeout" in result.stderr  # the hint
    assert took < 60  # not the 600 s the step would take
    assert not image_exists(tag)
    assert containers_from(base_id) == []  # buildah removed the killed step's container


def test_a_recipe_timeout_stops_its_own_step_only_and_the_option_overrides_it(
    project: Path, own_base: tuple[str, str]
) -> None:
    base, _ = own_base
    recipe(project, "hangs", base, 600, "step-timeout: 3\n")
    recipe(project, "slow", base, 8)  # longer than the other's timeout, and no limit
    template = f"localhost/nctest/timeout-{uuid.uuid4().hex[:8]}-{{name}}:latest"
    try:
        result = nestcustom(
            "build",
            "recipes/hangs.yaml",
            "recipes/slow.yaml",
            "--jobs",
            "2",
            "--tag",
            template,
            "--json",
            cwd=project,
        )
        assert result.returncode == 1
        outcome = {item["name"]: item for item in json.loads(result.stdout)["images"]}
        assert "the step timeout" in outcome["hangs"]["error"]["message"]
        assert outcome["slow"]["ok"], result.stderr
        assert image_exists(template.format(name="slow"))
        # The option wins over the recipe: 3 s would stop this 5 s step, 60 s does not.
        recipe(project, "hangs", base, 5, "step-timeout: 3\n")
        again = nestcustom(
            "build",
            "recipes/hangs.yaml",
            "--tag",
            template.format(name="hangs"),
            "--step-timeout",
            "60",
            cwd=project,
        )
        assert again.returncode == 0, again.stderr
    finally:
        for name in ("hangs", "slow"):
            podman("rmi", "-f", template.format(name=name))
