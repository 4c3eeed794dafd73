"""Built-in checks of what the language's newer keys made: a layer's files, the RPM files
a layer installed from stages and images (in the rpm database), the kernel arguments'
kargs.d file, one user's units and linger, and /opt's links.

The RPM files are named by the list the layer's RPM stage wrote and the image carries
(/usr/share/nestcustom/rpms/LAYER.list: SHA256 NEVRA PATH), since a stage is gone once
the image is built.
"""

from __future__ import annotations

from nestcustom.containerfile.generated import KARGS_DIR, USER_DROPIN, tmpfiles
from nestcustom.image.checks import CheckResult, Runner, file_checks
from nestcustom.recipe.model import Recipe

RPM_LISTS = "/usr/share/nestcustom/rpms"


def language_checks(recipe: Recipe, host: Runner) -> list[CheckResult]:
    results: list[CheckResult] = []
    for layer in recipe.layers:
        for spec in layer.all_files:
            if not spec.tree:
                results += file_checks(host, spec.dest, mode=spec.mode, sha256=spec.sha256 or None)
    for layer in recipe.local_rpm_layers:
        results += local_rpms(host, layer.name, [r.source for r in layer.local_rpms])
    kargs = recipe.kernel_arguments
    if kargs.append:
        toml = f"{KARGS_DIR}/nestcustom-{recipe.name}.toml"
        results += file_checks(host, toml, contains=f'"{kargs.append[0]}"')
    for entry in recipe.user_units:
        for unit in entry.enable:
            dropin = f"/usr/lib/systemd/user/{unit}.d/{USER_DROPIN}"
            results += file_checks(host, dropin, contains=f"ConditionUser=|{entry.user}")
            results.append(_user_enabled(host, unit, entry.user))
    lines = tmpfiles(recipe)
    if lines:
        conf = f"/usr/lib/tmpfiles.d/nestcustom-{recipe.name}.conf"
        results += [r for line in lines for r in file_checks(host, conf, contains=line)]
    for name in recipe.opt_links:
        results += file_checks(host, f"/usr/lib/opt/{name}")
    return results


def local_rpms(host: Runner, layer: str, sources: list[str]) -> list[CheckResult]:
    """Every package the layer's list names is in the rpm database, at that NEVRA."""
    path = f"{RPM_LISTS}/{layer}.list"
    out = host.run("cat -- %s", path)
    origin = ", ".join(dict.fromkeys(sources))
    if out.rc != 0:
        detail = f"no {path} ({out.why()}): the layer's list of RPM files is missing"
        return [
            CheckResult("package", f"RPM files of layer {layer}", "installed", False, detail, True)
        ]
    results = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) != 3:
            detail = f"not SHA256 NEVRA PATH: {line[:80]!r}"
            results.append(CheckResult("package", path, "a list of RPM files", False, detail, True))
            continue
        nevra = fields[1]
        found = host.run("rpm -q --qf %s -- %s", "%{NEVRA}\\n", nevra)
        detail = (
            ""
            if found.rc == 0 and nevra in found.stdout.split()
            else ("not in the rpm database" if found.rc == 1 else found.why())
        )
        expectation = f"installed from {origin} (layer {layer})"
        results.append(CheckResult("package", nevra, expectation, not detail, detail, True))
    return results


def _user_enabled(host: Runner, unit: str, user: str) -> CheckResult:
    """Enabled for every user's manager (systemctl --global: a link under /etc/systemd/user),
    the drop-in keeping it to `user`'s."""
    out = host.run("sh -c %s sh %s", 'ls /etc/systemd/user/*.wants/"$1" 2>/dev/null', unit)
    found = out.stdout.split()
    detail = "" if found else "no /etc/systemd/user/*.wants/ link (systemctl --global enable)"
    return CheckResult("unit", unit, f"enabled for {user}'s manager", not detail, detail, True)
