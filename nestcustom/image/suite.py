"""Every check of a built image, in an order where none can spoil another.

The checks themselves live in checks (packages, files, units, commands, /var) and
configchecks (what the files and unit steps made) and selinuxchecks (the policy
store); this module only orders them.
"""

from __future__ import annotations

from nestcustom.image import configchecks, imagevalues, languagechecks, selinuxchecks
from nestcustom.image.checks import CheckResult, Checks, Runner, layer_packages
from nestcustom.recipe.model import Flavor, Recipe


def run_checks(
    recipe: Recipe,
    host: Runner,
    results: list[CheckResult] | None = None,
    image_view: str | None = None,
) -> list[CheckResult]:
    """Every check, in an order where none can spoil another: the tests' commands run last.

    Results are appended to `results` as they come, so a caller that is
    interrupted midway still holds (and can report) the checks that ran.
    """
    checks = Checks(host, image_view)
    results = [] if results is None else results
    # A NewStart image is a plain container: /var/lib/rpm, dnf's state and the like
    # belong there. Only an ostree host drops /var.
    if recipe.base.flavor is Flavor.NESTOS:
        results.append(checks.var_empty())
    # Values the image gives ({{kernel}}, {{dist}}, ...), read once as the build read them:
    # package versions, module options and test commands may name them.
    facts: dict[str, str] = {}
    if imagevalues.needs_image(recipe):
        facts, why = imagevalues.read_facts(host)
        if why is not None:
            results.append(CheckResult("values", "{{...}}", "read from the image", False, why))

    def fill(text: str) -> str:
        return imagevalues.fill(text, recipe, facts)

    wants = layer_packages(recipe, fill)
    results += [checks.wanted(name, want) for name, want in wants.items()]
    for spec in recipe.files:
        if not spec.tree:  # a tree's digest is over all its files: configchecks looks at it
            sha256 = spec.sha256 or None  # none for a file from a stage or image
            results += checks.file(
                spec.dest, mode=spec.mode, owner=spec.owner, sha256=sha256, builtin=True
            )
    results += configchecks.config_checks(recipe, host)
    results += languagechecks.language_checks(recipe, host)
    results += selinuxchecks.selinux_checks(recipe, host)
    results += [checks.kernel_module(m, facts.get("kernel")) for m in recipe.kernel_modules]
    conf = f"nestcustom-{recipe.name}.conf"
    for module in recipe.kernel_modules:
        if module.load:
            results += checks.file(
                f"/usr/lib/modules-load.d/{conf}", contains=module.name, builtin=True
            )
        if module.options:
            options = fill(module.options)
            line = f"options {module.name} {options}"
            results += checks.file(f"/usr/lib/modprobe.d/{conf}", contains=line, builtin=True)
    results += [checks.unit(u, True, builtin=True) for u in dict.fromkeys(recipe.units_enable)]
    results += [checks.unit(u, False, builtin=True) for u in dict.fromkeys(recipe.units_disable)]
    tests = recipe.tests
    results += [checks.package_spec(fill(spec)) for spec in tests.present]
    results += [checks.absent(name) for name in tests.absent]
    for f in tests.files:
        results += checks.file(f.path, exists=f.exists, mode=f.mode, contains=f.contains)
    results += [checks.unit(u, True) for u in tests.units_enabled]
    results += [checks.unit(u, False) for u in tests.units_disabled]
    for c in tests.commands:
        argv = tuple(fill(arg) for arg in c.run)
        results.append(checks.command(argv, c.exit, c.stdout, c.timeout))
    return results
