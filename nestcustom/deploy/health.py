"""Is a host that came back on the target healthy: the system, the recipe's units and tests.

After the reboot the host is asked, in the same remote command that reads its
new boot id and status, for `systemctl is-system-running --wait` (running; when
degraded, the failed units) and for the recipe's host checks: the units it
enables are active (or a oneshot that succeeded), and its `tests:` that make
sense on a host (packages present or absent, files, commands). One fixed shell
script does it; every value from the recipe reaches it as an argument, and each
check's output comes back base64-encoded after a `==result RC` line, so nothing
a host or a command prints can pass for a result. Judging is pure (`judge`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from nestcustom.sanitize import shown

if TYPE_CHECKING:  # only `deploy --recipe` loads a recipe; a rollout without one never imports it
    from nestcustom.recipe.model import Recipe

SYSTEM_WAIT = 120  # seconds `is-system-running --wait` may wait for the boot to finish

# $@: the checks, each KIND then its arguments (see HealthChecks.argv). The system's state
# and its failed units are the first two results.
# nc_fill: {{kernel}} and the other values of the image, filled on the host as the build
# filled them (the updater's health.sh carries the same text).
HOST_VALUES = resources.files("nestcustom.containerfile").joinpath("host-values.sh").read_text()
SCRIPT = (
    HOST_VALUES
    + f"""\
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
result() {{ echo "==result $1"; base64 < "$out"; }}
timeout {SYSTEM_WAIT} systemctl is-system-running --wait > "$out" 2>/dev/null; result $?
systemctl --failed --no-legend --plain > "$out" 2>/dev/null; result $?
while [ "$#" -gt 0 ]; do
  kind=$1; shift
  case "$kind" in
    unit) systemctl show -p ActiveState -p SubState -p Type -p Result -- "$1" > "$out" 2>&1
          rc=$?; shift ;;
    pkg) rpm -q -- "$1" > "$out" 2>&1; rc=$?; shift ;;
    file) if [ -e "$1" ] || [ -L "$1" ]; then
            stat -c %a -- "$1" > "$out" 2>&1; rc=0
            [ -f "$1" ] && head -c 65536 -- "$1" >> "$out" 2>/dev/null
          else : > "$out"; rc=1; fi
          shift ;;
    cmd) t=$1; n=$2; shift 2
         (i=0; for a do [ "$i" -eq 0 ] && set --; [ "$i" -lt "$n" ] && set -- "$@" "$(nc_fill "$a")"
                        i=$((i + 1)); done
          exec timeout "$t" "$@") > "$out" 2>/dev/null < /dev/null
         rc=$?; shift "$n" ;;
    *) echo "==result 127"; exit 2 ;;
  esac
  result "$rc"
done
"""
)


@dataclass(frozen=True)
class Check:
    kind: str  # unit, present, absent, file, command
    target: str  # the unit, package, path, or the command as words
    args: tuple[str, ...] = ()  # file: (exists, mode, contains); command: (exit, stdout)
    run: tuple[str, ...] = ()  # command: program and arguments
    timeout: float = 60.0

    def argv(self) -> list[str]:
        if self.kind == "unit":
            return ["unit", self.target]
        if self.kind in ("present", "absent"):
            return ["pkg", self.target]
        if self.kind == "file":
            return ["file", self.target]
        return ["cmd", f"{self.timeout:g}", str(len(self.run)), *self.run]


@dataclass(frozen=True)
class HealthChecks:
    """What `deploy --recipe` checks on each host after its reboot (beyond the system state)."""

    checks: tuple[Check, ...] = ()
    source: str = ""  # the recipe they come from, for messages

    def argv(self) -> list[str]:
        return [word for check in self.checks for word in check.argv()]


@dataclass(frozen=True)
class Result:
    code: int
    output: str


def parse_results(text: str) -> list[Result]:
    """The `==result RC` records SCRIPT printed, in order; anything else is ignored."""
    results: list[Result] = []
    code: int | None = None
    chunks: list[str] = []

    def close() -> None:
        if code is not None:
            try:
                data = base64.b64decode("".join(chunks), validate=False)
            except (binascii.Error, ValueError):
                data = b"(unreadable output)"
            results.append(Result(code, data.decode("utf-8", "replace")))

    for line in text.splitlines():
        marker = re.fullmatch(r"==result (\d{1,3})", line.strip())
        if marker:
            close()
            code, chunks = int(marker.group(1)), []
        elif code is not None:
            chunks.append(line.strip())
    close()
    return results


def judge(checks: HealthChecks, text: str) -> list[str]:
    """Why the host is not healthy, one line per failed check; [] when it is."""
    results = parse_results(text)
    if len(results) < 2 + len(checks.checks):
        return [
            f"the health checks did not all run ({len(results)} results of {2 + len(checks.checks)})"
        ]
    problems = []
    state = results[0].output.strip() or "unknown"
    if state != "running":
        failed = [line.split()[0] for line in results[1].output.splitlines() if line.split()]
        why = f"the system is {shown(state, 40)}"
        if state == "starting" or results[0].code == 124:
            why += f" (still not up after {SYSTEM_WAIT} s)"
        if failed:
            why += "; failed units: " + ", ".join(shown(u, 80) for u in failed[:20])
        problems.append(why)
    for check, result in zip(checks.checks, results[2:], strict=False):
        problem = _problem(check, result)
        if problem:
            problems.append(problem)
    return problems


def _problem(check: Check, result: Result) -> str | None:
    if check.kind == "unit":
        props = dict(line.partition("=")[::2] for line in result.output.splitlines() if "=" in line)
        active, sub = props.get("ActiveState", "unknown"), props.get("SubState", "")
        if active == "active" or (
            active == "inactive"
            and props.get("Type") == "oneshot"
            and props.get("Result") == "success"
            and sub == "dead"
        ):
            return None
        return f"unit {check.target} is {shown(active, 40)}" + (
            f" ({shown(sub, 40)}, result {shown(props.get('Result', '?'), 40)})" if sub else ""
        )
    if check.kind == "present":
        return None if result.code == 0 else f"package {check.target} is not installed"
    if check.kind == "absent":
        return None if result.code != 0 else f"package {check.target} is installed"
    if check.kind == "file":
        return _file_problem(check, result)
    return _command_problem(check, result)


def _file_problem(check: Check, result: Result) -> str | None:
    exists, mode, contains = check.args
    if exists == "no":
        return None if result.code != 0 else f"file {check.target} exists"
    if result.code != 0:
        return f"file {check.target} is missing"
    first, _, content = result.output.partition("\n")
    if mode and first.strip().lstrip("0") != mode.lstrip("0"):
        return f"file {check.target} has mode {shown(first.strip(), 10)}, not {mode}"
    if contains and contains not in content:
        return f"file {check.target} does not contain {contains!r}"
    return None


def _command_problem(check: Check, result: Result) -> str | None:
    exit_code, pattern = check.args
    words = " ".join(check.run)
    if result.code == 124:
        return f"command {words} timed out after {check.timeout:g} s"
    if result.code != int(exit_code):
        return f"command {words} exited {result.code}, not {exit_code}"
    if pattern and not re.search(pattern, result.output):
        return f"command {words}: output does not match {pattern!r}: {shown(result.output, 120)}"
    return None


def from_recipe(recipe: Recipe, source: str) -> HealthChecks:
    """The host checks of a recipe: the units it enables (and its tests' enabled units) are
    active, its tests' packages present or absent, its files, its commands. Version
    constraints of packages and disabled units are `nestcustom test`'s, not checked here."""
    from nestcustom.recipe.values import substitute_known  # only --recipe pays for it

    checks: list[Check] = []
    for unit in dict.fromkeys((*recipe.units_enable, *recipe.tests.units_enabled)):
        if "@." not in unit:  # a template is not a unit that runs
            checks.append(Check("unit", unit))
    tests = recipe.tests
    for spec in tests.present:
        name = re.match(r"[^\s<>=!]+", spec)
        if name:
            checks.append(Check("present", name.group(0)))
    checks += [Check("absent", name) for name in tests.absent]
    for f in tests.files:
        flags = ("yes" if f.exists else "no", f.mode or "", f.contains or "")
        checks.append(Check("file", f.path, flags))
    for c in tests.commands:
        args = (str(c.exit), c.stdout or "")
        # values the recipe fixes now; those of the image ({{kernel}}...) on the host
        run = tuple(substitute_known(word, recipe) for word in c.run)
        checks.append(Check("command", " ".join(c.run), args, run, c.timeout))
    return HealthChecks(tuple(checks), source)


def to_record(checks: HealthChecks) -> dict[str, Any]:
    """The checks as the journal's header keeps them (a resumed rollout checks the same)."""
    return {"source": checks.source, "checks": [dataclasses.asdict(c) for c in checks.checks]}


def from_record(record: dict[str, Any]) -> HealthChecks:
    """Inverse of `to_record`; raises KeyError/TypeError/ValueError on anything else."""
    checks = []
    for item in record["checks"]:
        checks.append(
            Check(
                str(item["kind"]),
                str(item["target"]),
                tuple(str(a) for a in item["args"]),
                tuple(str(a) for a in item["run"]),
                float(item["timeout"]),
            )
        )
    return HealthChecks(tuple(checks), str(record["source"]))
