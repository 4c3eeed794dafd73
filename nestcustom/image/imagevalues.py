"""Build-time values (`{{kernel}}`, ...) in a recipe's test commands, read from the image.

`nestcustom test` reads them the way the build did: the build helper's `facts`
runs inside the test container, so a test sees the same kernel version, os-release
fields and dist the build's steps saw. Values known from the recipe are filled in
first. The helper's text is passed as `sh -c`'s script: nothing is copied in.
"""

from __future__ import annotations

import shlex

from nestcustom.containerfile.commands import helper_text
from nestcustom.image.checks import Runner
from nestcustom.recipe import values
from nestcustom.recipe.model import Recipe

FACTS_DIR = "/tmp/nestcustom-values"  # in the throwaway test container only  # noqa: S108


def read_facts(host: Runner) -> tuple[dict[str, str], str | None]:
    """({name: value} the image gives, or the reason it gave none)."""
    facts = shlex.join(["sh", "-c", helper_text(), "nestcustom-build", "facts", FACTS_DIR])
    out = host.run(f"{facts} && cat {FACTS_DIR}/facts", timeout=60)
    if out.rc != 0:
        return {}, out.why()
    found = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return found, None


def fill(text: str, recipe: Recipe, facts: dict[str, str]) -> str:
    """`text` with every value filled in; a value the image did not give stays a token."""
    known = values.substitute_known(text, recipe)
    return values.TOKEN.sub(lambda m: facts.get(m.group(1), m.group(0)), known)


def needs_image(recipe: Recipe) -> bool:
    """Whether the checks name a value only the image can give: in a test command, a
    package version the layers or the tests ask for (`1.0-1{{dist}}`), or kernel modules."""
    texts = [arg for command in recipe.tests.commands for arg in command.run]
    texts += recipe.tests.present
    for layer in recipe.layers:
        texts += [*layer.install, *layer.replace]
        texts += [spec for swap in layer.swap for spec in swap.install]
    return bool(recipe.kernel_modules) or any(
        values.needs_build(values.substitute_known(text, recipe)) for text in texts
    )
