"""Values only the image can give ({{os.id}}, {{dist}}) are read from the image before the
checks that name them, wherever the recipe names them: in a test command, or in a
package version the tests ask for. Run in an image root on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.image.checks import CheckResult
from nestcustom.image.suite import run_checks
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe
from tests.gitops.rpms import Pkg
from tests.image.imageroot import ImageRoot, make_root


@pytest.fixture
def image(tmp_path: Path) -> ImageRoot:
    (tmp_path / "root").mkdir()
    root = make_root(tmp_path / "root", tmp_path, [Pkg("nc-one", "1.0", "1")])
    (tmp_path / "root" / "etc" / "os-release").write_text('ID=nestos\nVERSION_ID="22.03"\n')
    return root


def test_a_test_command_gets_the_images_values(write_recipe: WriteRecipe, image: ImageRoot) -> None:
    recipe = load_recipe(
        write_recipe(
            f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: a, install: [nc-one]}}\n"
            "tests:\n  commands:\n"
            '    - {run: [echo, "{{os.id}} {{os.version}}"], stdout: "^nestos 22.03$"}\n'
        )
    ).recipe
    results = run_checks(recipe, image)
    assert results[-1] == CheckResult(
        "command", "echo 'nestos 22.03'", "exit 0, stdout ~ '^nestos 22.03$'", True, ""
    )


def test_a_tested_package_version_gets_the_images_dist(
    write_recipe: WriteRecipe, image: ImageRoot
) -> None:
    recipe = load_recipe(
        write_recipe(
            f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: a, install: [nc-one]}}\n"
            'tests:\n  packages:\n    present: ["nc-one = 1.0-1{{dist}}"]\n'
        )
    ).recipe
    results = run_checks(recipe, image)
    assert results[-1] == CheckResult("package", "nc-one", "installed, version = 1.0-1", True)
