"""The SELinux checks read the image's policy store as files: a boolean set the other way
is reported as such, a module by its priority directory. Run in an image root on this
machine (tests/image/imageroot.py)."""

from __future__ import annotations

from pathlib import Path

from nestcustom.image.checks import CheckResult
from nestcustom.image.selinuxchecks import selinux_checks
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe
from tests.image.imageroot import make_root

RECIPE = f"""\
name: r
base: {{image: {BASE}}}
selinux:
  booleans: {{nc_on: true, nc_off: false, nc_unset: true}}
  modules: [/usr/share/selinux/packages/nc_demo.pp, /usr/share/selinux/packages/nc_gone.pp]
"""


def test_booleans_and_modules_are_judged_from_the_policy_store(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    (tmp_path / "root").mkdir()
    image = make_root(tmp_path / "root", tmp_path, [])
    selinux = tmp_path / "root" / "etc" / "selinux"
    (selinux / "targeted" / "active" / "modules" / "400" / "nc_demo").mkdir(parents=True)
    (selinux / "config").write_text("SELINUX=enforcing\nSELINUXTYPE=targeted\n")
    (selinux / "semanage.conf").write_text("store-root=/etc/selinux\n")
    # nc_off is set on (a later step's doing), nc_unset not at all
    (selinux / "targeted" / "active" / "booleans.local").write_text("nc_on=1\nnc_off=1\n")
    recipe = load_recipe(write_recipe(RECIPE)).recipe
    store = "/etc/selinux/targeted/active"
    at_400 = "installed at priority 400"
    assert selinux_checks(recipe, image) == [
        CheckResult("selinux", "boolean nc_on", "on (persistent)", True, "", True),
        CheckResult(
            "selinux",
            "boolean nc_off",
            "off (persistent)",
            False,
            "booleans.local sets it on",
            True,
        ),
        CheckResult("selinux", "boolean nc_unset", "on (persistent)", False, "not set", True),
        CheckResult("selinux", "module nc_demo", at_400, True, "", True),
        CheckResult(
            "selinux",
            "module nc_gone",
            at_400,
            False,
            f"not in the store ({store}/modules/400/nc_gone)",
            True,
        ),
    ]
