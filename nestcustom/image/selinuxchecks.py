"""Built-in checks of what the SELinux step wrote, read from the image's policy store.

SELinux is not running in a throwaway container (nor in most builds), so nothing
asks the kernel: the store is read as files, where libsemanage keeps it
(STORE-ROOT/TYPE/active, from semanage.conf's store-root= and /etc/selinux/config's
SELINUXTYPE=; /etc/selinux/TYPE on rpm-ostree images). A persistent boolean is a
`NAME=1` or `NAME=0` line of active/booleans.local (libsemanage booleans_file.c); a
module installed at priority P is the directory active/modules/P/NAME, which
`semodule -l` lists.
"""

from __future__ import annotations

from nestcustom.image.checks import CheckResult, Runner
from nestcustom.recipe.model import Recipe, Selinux

# Prints the store directory (STORE-ROOT/TYPE), as the build helper finds it.
_STORE_SCRIPT = r"""
type=$(sed -n 's/^[[:space:]]*SELINUXTYPE[[:space:]]*=[[:space:]]*"\{0,1\}\([^"[:space:]]*\).*/\1/p' \
    /etc/selinux/config 2>/dev/null | tail -n 1)
[ -n "$type" ] || { echo "no SELINUXTYPE in /etc/selinux/config" >&2; exit 3; }
root=$(sed -n 's/^[[:space:]]*store-root[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
    /etc/selinux/semanage.conf 2>/dev/null | tail -n 1)
printf '%s/%s\n' "${root:-/var/lib/selinux}" "$type"
"""


def selinux_checks(recipe: Recipe, host: Runner) -> list[CheckResult]:
    """The selinux: section's, then each layer's selinux steps' (in the order they ran: a
    later boolean setting wins in booleans.local, which each check reads as it is)."""
    steps = [
        step.selinux
        for layer in recipe.layers
        for step in layer.steps
        if step.selinux is not None and step.selinux.is_set
    ]
    results: list[CheckResult] = []
    for selinux in (*steps, recipe.selinux):
        if selinux.is_set:
            results += _store_checks(selinux, host)
    return results


def _store_checks(selinux: Selinux, host: Runner) -> list[CheckResult]:
    found = host.run("sh -c %s sh", _STORE_SCRIPT)
    store = found.stdout.strip()
    wanted = [
        *(("boolean", name, "on" if value else "off") for name, value in selinux.booleans),
        *(("module", m.name or m.src, f"installed at priority {selinux.priority}")
          for m in selinux.modules),
    ]  # fmt: skip
    if found.rc != 0 or not store.startswith("/"):
        why = f"cannot find the policy store ({found.why()})"
        return [CheckResult("selinux", f"{k} {s}", e, False, why, True) for k, s, e in wanted]
    results = []
    listed = host.run("cat -- %s", f"{store}/active/booleans.local")
    lines = set(listed.stdout.split()) if listed.rc == 0 else set()
    for name, value in selinux.booleans:
        expectation = ("on" if value else "off") + " (persistent)"
        detail = ""
        if listed.rc != 0:
            detail = f"no {store}/active/booleans.local ({listed.why()})"
        elif f"{name}={int(value)}" not in lines:
            other = f"{name}={int(not value)}" in lines
            detail = f"booleans.local sets it {'off' if value else 'on'}" if other else "not set"
        results.append(
            CheckResult("selinux", f"boolean {name}", expectation, not detail, detail, True)
        )
    for module in selinux.modules:
        where = f"{store}/active/modules/{selinux.priority}/{module.name}"
        probe = host.run("test -d %s", where)
        detail = "" if probe.rc == 0 else f"not in the store ({where})"
        subject = f"module {module.name or module.src}"
        expectation = f"installed at priority {selinux.priority}"
        results.append(CheckResult("selinux", subject, expectation, not detail, detail, True))
    return results
