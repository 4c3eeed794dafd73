"""NestOS rules a schema cannot express: what a host keeps, what a version can do.

`lint_recipe` runs every rule; each is a small function in rules_image (what
the image holds), rules_files (files, links, users, units, the layer count)
or rules_build (what its build runs: commands, scripts,
stages, values, kernel modules), rules_selinux (booleans and policy modules),
rules_secrets (no password in a URL, no secret in env:), rules_language (a layer's files
and steps, RPM files from stages, kernel arguments, one user's units, /nix, flatpaks),
rules_order (a step that reads what a later step writes), rules_signing (keys of the
scope's signature type), rules_updates (the ring, schedule and spans of updates:, signatures it cannot prove).
"""

from __future__ import annotations

from nestcustom.errors import Problem
from nestcustom.recipe import (
    rules_build,
    rules_files,
    rules_image,
    rules_language,
    rules_order,
    rules_secrets,
    rules_selinux,
    rules_signing,
    rules_updates,
)
from nestcustom.recipe.model import Recipe
from nestcustom.recipe.rules_common import Locate, Rule, is_rpm_url, package_name

__all__ = ["RULES", "is_rpm_url", "lint_recipe", "package_name"]

RULES: tuple[Rule, ...] = (
    rules_image.files_reach_host,
    rules_image.unique_names,
    rules_image.layer_contents,
    rules_image.version_gates,
    rules_image.deletions_reach_host,
    rules_image.architecture,
    rules_image.repos,
    rules_image.units,
    rules_image.labels,
    *rules_build.RULES,
    *rules_files.RULES,
    *rules_selinux.RULES,
    *rules_secrets.RULES,
    *rules_language.RULES,
    *rules_order.RULES,
    *rules_signing.RULES,
    *rules_updates.RULES,
)


def lint_recipe(recipe: Recipe, locate: Locate) -> list[Problem]:
    return [problem for rule in RULES for problem in rule(recipe, locate)]
