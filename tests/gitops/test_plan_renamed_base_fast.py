"""`plan` against an image built before the recipe moved to another base reference, fast:
the base the image was built on is found under its old reference (its layers and history
begin the image's), so the inputs of that build are rebuilt exactly and the plan does not
warn that they may be wrong. test_plan_fast.py's project, image and base, reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.gitops import plan
from nestcustom.gitops.imagefacts import ImageFacts
from nestcustom.gitops.plan import _inputs_at_build
from nestcustom.image.inputs import INPUTS_LABEL, REVISION
from tests.gitops.helpers import commit_all, git
from tests.gitops.test_plan_fast import (  # noqa: F401 - a fixture
    BASE,
    BASE_HISTORY,
    BASE_ID,
    BASE_LAYERS,
    image,
    keys_now,
    project,
    recipe_at,
)

OLD_BASE = "hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP1.20230601.0-x86_64"
OLD_BASE_ID = "a" * 64


def test_the_old_base_reference_still_names_the_images_base(
    project: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = project / "recipes" / "web.yaml"
    recipe.write_text(recipe.read_text().replace(BASE, OLD_BASE))
    commit_all(project.parent, "on the old base")
    built = git(project, "rev-parse", "HEAD").strip()
    before, digest = keys_now(project, {OLD_BASE: OLD_BASE_ID})
    recipe.write_text(recipe.read_text().replace(OLD_BASE, BASE))
    commit_all(project.parent, "on the new base")

    def facts(reference: str, tls_verify: bool = True) -> ImageFacts | None:
        known = {OLD_BASE: OLD_BASE_ID, BASE: BASE_ID}
        if reference not in known:
            return None
        return ImageFacts(reference, known[reference], {}, BASE_LAYERS, "local", BASE_HISTORY)

    monkeypatch.setattr(plan, "image_facts", facts)
    labels = {REVISION: built, INPUTS_LABEL: digest}
    now = {BASE: BASE_ID}  # the IDs of what the recipe names now: the old base is not there
    assert _inputs_at_build(recipe_at(project), project, image(labels), now, True) == (before, "")
