"""Built-in checks of what the files step and the unit step made: drop-ins, trees, links,
directories, removals, masked units, the default target and the sysusers.d fragment.

Links are judged by `readlink`, so a link is checked even when what it points to is
absent in a container (/dev/null, a path only the host has).
"""

from __future__ import annotations

from nestcustom.image.checks import CheckResult, Runner, file_checks
from nestcustom.recipe.model import Recipe

_UNITS = "/etc/systemd/system"


def link(host: Runner, path: str, target: str) -> CheckResult:
    """`path` is a symlink whose text is exactly `target`."""
    found, detail = _readlink(host, path)
    if not detail and found != target:
        detail = f"points to {found}"
    return CheckResult("link", path, f"-> {target}", not detail, detail, True)


def unit_link(host: Runner, unit: str, name: str, expectation: str) -> CheckResult:
    """/etc/systemd/system/`unit` links to `name` (a path or a unit name at its end)."""
    found, detail = _readlink(host, f"{_UNITS}/{unit}")
    if not detail and found != name and not found.endswith("/" + name):
        detail = f"links to {found}"
    return CheckResult("unit", unit, expectation, not detail, detail, True)


def _readlink(host: Runner, path: str) -> tuple[str, str]:
    out = host.run("readlink -- %s", path)
    if out.rc != 0:
        return "", "not a symlink" if out.rc == 1 else out.why()
    return out.stdout.strip(), ""


def config_checks(recipe: Recipe, host: Runner) -> list[CheckResult]:
    results: list[CheckResult] = []
    for spec in recipe.dropins:
        results += file_checks(host, spec.dest, mode=spec.mode, sha256=spec.sha256)
    for spec in recipe.files:
        if spec.tree:
            results += file_checks(host, spec.dest)
    for directory in recipe.directories:
        results += file_checks(host, directory.path, mode=directory.mode)
    for path in recipe.removals:
        results += file_checks(host, path, exists=False)
    results += [link(host, s.path, s.target) for s in recipe.symlinks]
    units = recipe.units
    results += [unit_link(host, unit, "/dev/null", "masked") for unit in units.mask]
    if units.default_target:
        target = units.default_target
        results.append(unit_link(host, "default.target", target, f"is {target}"))
    for edit in recipe.edits:
        for name, value in edit.values:
            results += file_checks(host, edit.file, contains=f"{name}={value}")
    for scope in recipe.signing.scopes:
        key = scope.key
        results += file_checks(host, key.dest, sha256=key.sha256)
        results += file_checks(host, "/etc/containers/policy.json", contains=key.dest)
    if recipe.users or recipe.groups:
        fragment = f"/usr/lib/sysusers.d/nestcustom-{recipe.name}.conf"
        for user in recipe.users:
            results += file_checks(host, fragment, contains=f"u {user.name} ")
        for group in recipe.groups:
            results += file_checks(host, fragment, contains=f"g {group.name} ")
    return results
