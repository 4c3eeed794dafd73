"""Check a built image against its recipe with testinfra, in a throwaway container.

Two sets of checks: the recipe's `tests:` section, and built-in checks that
hold for every recipe (each installed package present, each removed package
absent, nothing under /var that a NestOS host would drop). Every check gives a
result, never an exception: a check that cannot run is a failed check that
says why. The container is always removed.

Packages are checked with `rpm -q`, not testinfra's package module: testinfra
picks its backend from the distribution, and NestOS images are rpm-only.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from posixpath import basename
from typing import Any
from xml.etree import ElementTree

import testinfra

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.lint import is_rpm_url, package_name
from nestcustom.model import Flavor, Recipe

_CONSTRAINT = re.compile(r"^(?P<name>[^\s<>=]+)\s*(?P<op><=|>=|=|<|>)\s*(?P<evr>\S+)$")
_RPM_FILE = re.compile(r"^(?P<name>.+)-[^-]+-[^-]+\.[A-Za-z0-9_]+\.rpm$")
VAR_SHOWN = 10


@dataclass(frozen=True)
class CheckResult:
    kind: str  # package | file | command | unit | var
    subject: str
    expectation: str
    passed: bool
    detail: str = ""
    builtin: bool = False


@dataclass(frozen=True)
class VerifyReport:
    image: str
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


# -- RPM version comparison (rpmvercmp), so constraints are judged as rpm would ----------


def _segments(version: str) -> list[str]:
    return re.findall(r"~|\^|[0-9]+|[A-Za-z]+", version)


def rpm_vercmp(a: str, b: str) -> int:
    """-1, 0 or 1, as rpm's rpmvercmp compares two version (or release) strings."""
    if a == b:
        return 0
    left, right = _segments(a), _segments(b)
    while left or right:
        x = left.pop(0) if left else None
        y = right.pop(0) if right else None
        if x == "~" or y == "~":  # tilde sorts before everything, even the end
            if x != y:
                return -1 if x == "~" else 1
            continue
        if x == "^" or y == "^":  # caret sorts after the end, before anything else
            if x is None:
                return -1
            if y is None:
                return 1
            if x != y:
                return -1 if x == "^" else 1
            continue
        if x is None or y is None:
            return -1 if x is None else 1
        if x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1
        if x.isdigit():
            x, y = x.lstrip("0") or "0", y.lstrip("0") or "0"
            if len(x) != len(y):
                return 1 if len(x) > len(y) else -1
        if x != y:
            return 1 if x > y else -1
    return 0


def compare_evr(a: str, b: str) -> int:
    """Compare `[epoch:]version[-release]`; a side without a release matches any release."""

    def split(evr: str) -> tuple[int, str, str | None]:
        epoch, _, rest = evr.rpartition(":") if ":" in evr else ("0", "", evr)
        version, _, release = rest.partition("-")
        return int(epoch or 0), version, release or None

    ea, va, ra = split(a)
    eb, vb, rb = split(b)
    if ea != eb:
        return 1 if ea > eb else -1
    result = rpm_vercmp(va, vb)
    if result or ra is None or rb is None:
        return result
    return rpm_vercmp(ra, rb)


def _satisfies(installed: str, op: str, wanted: str) -> bool:
    order = compare_evr(installed, wanted)
    return {"=": order == 0, "<": order < 0, ">": order > 0, "<=": order <= 0, ">=": order >= 0}[op]


# -- the container -----------------------------------------------------------------------


@contextmanager
def throwaway_container(image: str) -> Iterator[str]:
    podman = proc.require("podman", "podman")
    if proc.run([podman, "image", "exists", image], check=False).returncode != 0:
        raise NestcustomError(
            f"no image {image} in podman's storage", "build it first: nestcustom build RECIPE"
        )
    name = f"nestcustom-test-{uuid.uuid4().hex[:12]}"
    proc.run(
        [
            podman,
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "--network=none",
            "--entrypoint",
            "sleep",
            image,
            "infinity",
        ],
        timeout=120,
    )
    try:
        yield name
    finally:
        proc.run([podman, "rm", "-f", "-t", "0", name], check=False, timeout=60)


# -- the checks --------------------------------------------------------------------------


class _Checks:
    def __init__(self, host: Any) -> None:
        self.host = host

    def run(self, command: str, *args: str) -> Any:
        return self.host.run(command, *args)

    def installed(self, name: str) -> str | None:
        """`epoch:version-release` of an installed package, or None."""
        out = self.run("rpm -q --qf '%%{EPOCHNUM}:%%{VERSION}-%%{RELEASE}\\n' -- %s", name)
        return out.stdout.strip().splitlines()[-1] if out.rc == 0 and out.stdout.strip() else None

    def present(self, spec: str, builtin: bool) -> CheckResult:
        match = _CONSTRAINT.match(spec)
        name = match["name"] if match else spec
        found = self.installed(name)
        if found is None:
            return CheckResult("package", spec, "installed", False, "not installed", builtin)
        if match and not _satisfies(found, match["op"], match["evr"]):
            return CheckResult(
                "package", spec, "installed", False, f"installed version is {found}", builtin
            )
        return CheckResult("package", spec, "installed", True, found, builtin)

    def absent(self, name: str, builtin: bool) -> CheckResult:
        found = self.installed(name)
        detail = f"installed ({found})" if found else ""
        return CheckResult("package", name, "absent", found is None, detail, builtin)

    def file(
        self, path: str, exists: bool, mode: str | None, contains: str | None
    ) -> list[CheckResult]:
        there = self.run("test -e %s", path).rc == 0
        results = [
            CheckResult(
                "file",
                path,
                "exists" if exists else "absent",
                there == exists,
                "" if there == exists else ("missing" if exists else "present"),
            )
        ]
        if not (exists and there):
            return results
        if mode is not None:
            actual = self.run("stat -c %%a %s", path).stdout.strip()
            results.append(
                CheckResult(
                    "file",
                    path,
                    f"mode {mode}",
                    int(actual or "0", 8) == int(mode, 8),
                    f"mode is {actual.zfill(4)}",
                )
            )
        if contains is not None:
            content = self.run("cat %s", path)
            found = content.rc == 0 and contains in content.stdout
            results.append(
                CheckResult(
                    "file", path, f"contains {contains!r}", found, "" if found else "text not found"
                )
            )
        return results

    def command(self, argv: tuple[str, ...], exit_code: int, stdout: str | None) -> CheckResult:
        line = shlex.join(argv)
        out = self.run(line)
        expectation = f"exit {exit_code}" + (f", stdout ~ {stdout!r}" if stdout else "")
        problems = []
        if out.rc != exit_code:
            problems.append(
                f"exit {out.rc}" + (f": {out.stderr.strip()[-200:]}" if out.stderr.strip() else "")
            )
        if stdout is not None and not re.search(stdout, out.stdout):
            problems.append(f"stdout was {out.stdout.strip()[:200]!r}")
        return CheckResult("command", line, expectation, not problems, "; ".join(problems))

    def unit_enabled(self, unit: str) -> bool:
        if self.run("command -v systemctl").rc == 0:
            return bool(self.run("systemctl is-enabled --quiet -- %s", unit).rc == 0)
        # No systemctl (a minimal image): an enabled unit is a symlink in some *.wants directory.
        script = 'for d in /etc/systemd/system/*.wants /usr/lib/systemd/system/*.wants; do [ -L "$d/$1" ] || [ -e "$d/$1" ] && exit 0; done; exit 1'
        return bool(self.run("sh -c %s sh %s", script, unit).rc == 0)

    def unit(self, unit: str, want_enabled: bool) -> CheckResult:
        enabled = self.unit_enabled(unit)
        return CheckResult(
            "unit",
            unit,
            "enabled" if want_enabled else "disabled",
            enabled == want_enabled,
            "enabled" if enabled else "not enabled",
        )

    def var_empty(self) -> CheckResult:
        # Directories under /var are fine (the host creates its own); files and links are dropped.
        out = self.run("find /var -xdev %s -type f -o -type l %s -print", "(", ")")
        paths = out.stdout.split()
        detail = ", ".join(paths[:VAR_SHOWN]) + (
            f" and {len(paths) - VAR_SHOWN} more" if len(paths) > VAR_SHOWN else ""
        )
        return CheckResult(
            "var", "/var", "no files (a NestOS host drops them)", not paths, detail, builtin=True
        )


def _layer_name(spec: str) -> str:
    if is_rpm_url(spec):
        match = _RPM_FILE.match(basename(spec))
        return match["name"] if match else basename(spec)
    return package_name(spec)


def run_checks(recipe: Recipe, host: Any) -> list[CheckResult]:
    checks = _Checks(host)
    results: list[CheckResult] = []
    for layer in recipe.layers:
        results += [checks.present(_layer_name(p), True) for p in dict.fromkeys(layer.install)]
        results += [checks.absent(name, True) for name in dict.fromkeys(layer.remove)]
        for swap in layer.swap:
            results += [
                checks.absent(swap.remove, True),
                checks.present(package_name(swap.install), True),
            ]
    if recipe.base.flavor is Flavor.NESTOS:
        results.append(checks.var_empty())
    tests = recipe.tests
    results += [checks.present(spec, False) for spec in tests.present]
    results += [checks.absent(name, False) for name in tests.absent]
    for f in tests.files:
        results += checks.file(f.path, f.exists, f.mode, f.contains)
    results += [checks.command(c.run, c.exit, c.stdout) for c in tests.commands]
    results += [checks.unit(u, True) for u in tests.units_enabled]
    results += [checks.unit(u, False) for u in tests.units_disabled]
    return results


def verify_image(recipe: Recipe, image: str) -> VerifyReport:
    with throwaway_container(image) as container:
        host = testinfra.get_host(f"podman://{container}")
        return VerifyReport(image, tuple(run_checks(recipe, host)))


def junit_xml(report: VerifyReport, recipe_name: str) -> str:
    failures = sum(not r.passed for r in report.results)
    suite = ElementTree.Element(
        "testsuite",
        name=recipe_name,
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
    )
    for result in report.results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"{recipe_name}.{result.kind}",
            name=f"{result.subject} {result.expectation}",
        )
        if not result.passed:
            ElementTree.SubElement(
                case, "failure", message=result.detail or "failed"
            ).text = result.detail
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
