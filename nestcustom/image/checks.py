"""The checks of a built image: what its recipe promises, judged from inside it.

Two sets: the recipe's `tests:` section, and built-in checks that hold for
every recipe: the packages the layers leave installed are there (at the RPM
file's version for RPM URLs and replacements), the packages they remove are
gone, the recipe's files and units are in place, and nothing is under /var
that a NestOS host would drop. Every check gives a result, never an
exception: a check that cannot run is a failed check that says why.

Packages are checked with `rpm -q`, not testinfra's package module: testinfra
picks its backend from the distribution it detects, and NestOS images are
rpm-only. Every argument reaches the container's shell quoted by the runner
(`run(command, *args)`), never formatted into the command.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, Protocol

from nestcustom.image.rpmversion import rpm_file_nvr, satisfies
from nestcustom.recipe.lint import is_rpm_url
from nestcustom.recipe.model import RUN_MOUNTED_FILES, KernelModule, Layer, Recipe

_CONSTRAINT = re.compile(r"^(?P<name>[^\s<>=]+)\s*(?:(?P<op><=|>=|=|<|>)\s*(?P<evr>\S+))?$")
_QUERY_FORMAT = "%{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\\n"
_INSTALLED = re.compile(r"^(?P<evr>[0-9]+:\S+-\S+) (?P<arch>\S+)$")
VAR_SHOWN = 10  # paths named in the detail of the /var check
_SHOWN = 200  # characters of output quoted in a detail

# `systemctl is-enabled` answers one of these (systemctl(1), "is-enabled").
_UNIT_STATES = frozenset(
    {
        "enabled",
        "enabled-runtime",
        "linked",
        "linked-runtime",
        "alias",
        "masked",
        "masked-runtime",
        "static",
        "indirect",
        "disabled",
        "generated",
        "transient",
        "bad",
        "not-found",
    }
)
# Only these mean "starts at boot because of a symlink the image carries"; `static`,
# `indirect` and the rest exit 0 too but are not an enablement.
_ENABLED_STATES = frozenset({"enabled", "enabled-runtime"})

# Without a usable systemctl (the fixture images have none, and systemd is not PID 1
# in the container), a unit is enabled when a *.wants or *.requires directory links to
# it, and masked when its unit path points to /dev/null. $1 is the unit. Prints
# "masked PATH", "symlink PATH" or "none", then "file yes|no" (is there a unit file,
# for a template instance the template's).
_UNIT_SCRIPT = r"""
unit=$1
template=$(printf '%s\n' "$unit" | sed 's/@[^.]*\./@./')
for dir in /etc/systemd/system /usr/lib/systemd/system; do
    if [ "$(readlink -- "$dir/$unit")" = /dev/null ]; then
        echo "masked $dir/$unit"; exit 0
    fi
done
found=none
for link in /etc/systemd/system/*.wants/"$unit" /etc/systemd/system/*.requires/"$unit" \
            /usr/lib/systemd/system/*.wants/"$unit" /usr/lib/systemd/system/*.requires/"$unit"; do
    if [ -L "$link" ] || [ -e "$link" ]; then found="symlink $link"; break; fi
done
echo "$found"
for file in /etc/systemd/system/"$unit" /usr/lib/systemd/system/"$unit" \
            /etc/systemd/system/"$template" /usr/lib/systemd/system/"$template"; do
    if [ -e "$file" ]; then echo "file yes"; exit 0; fi
done
echo "file no"
"""


@dataclass(frozen=True)
class CheckResult:
    kind: str  # package | file | command | unit | var | values | module
    subject: str  # "strace", "/etc/motd", "strace -V", "zincati.service", "/var"
    expectation: str  # "installed", "absent", "mode 0644", "exit 0, stdout ~ 'x'"
    passed: bool
    detail: str = ""  # what was found; always set when the check failed
    builtin: bool = False  # derived from the recipe's layers, files and units, not tests:


@dataclass(frozen=True)
class Output:
    rc: int
    raw: bytes
    stderr: str
    timed_out: float | None = None  # the timeout (seconds) the command ran into, if it did

    @property
    def stdout(self) -> str:
        return self.raw.decode(errors="replace")

    def why(self) -> str:
        """What went wrong, in a few words, for a detail."""
        last = self.stderr.strip().splitlines()[-1:] or [self.stdout.strip()[:_SHOWN]]
        return f"exit {self.rc}" + (f": {last[0][:_SHOWN]}" if last[0] else "")


class Runner(Protocol):
    """Runs a command line in the image: `command` is formatted with `args`, each quoted.

    With a `timeout` (seconds), a command still running then is abandoned and its
    Output says `timed_out`.
    """

    def run(self, command: str, *args: str, timeout: float | None = None) -> Output: ...


@dataclass(frozen=True)
class _Want:
    """What the layers leave behind for one package."""

    present: bool
    layer: str
    op: str | None = None  # a version constraint on a present package
    evr: str | None = None
    exact: str | None = None  # version-release of an RPM file that must be the one installed
    unknown: str | None = None  # an RPM URL whose file name does not tell the package
    # A layer whose commands (run:, script:) ran after the package was installed: they
    # may have removed it on purpose (`rpm -e`), so its absence is no failure.
    commands_after: str | None = None


class Checks:
    """The checks, run through `host`.

    `image_view`: where the image itself is mounted read-only in the container, for
    the files podman mounts its own copies over (RUN_MOUNTED_FILES): /etc/hostname in
    a container is podman's, the image's is under the view.
    """

    def __init__(self, host: Runner, image_view: str | None = None) -> None:
        self.host = host
        self.image_view = image_view

    def _seen(self, path: str) -> str:
        """Where the image's own `path` can be read in the container."""
        if self.image_view and path in RUN_MOUNTED_FILES:
            return f"{self.image_view}{path}"
        return path

    # packages

    def installed(self, name: str) -> tuple[list[tuple[str, str]], str | None]:
        """((`epoch:version-release`, arch) of each installed instance, error or None)."""
        out = self.host.run("rpm -q --qf %s -- %s", _QUERY_FORMAT, name)
        # rpm says "is not installed" also when it cannot open its database; only its
        # stderr tells the two apart.
        if out.rc == 1 and "is not installed" in out.stdout and "error:" not in out.stderr:
            return [], None
        found = [_INSTALLED.match(line) for line in out.stdout.splitlines() if line]
        if out.rc != 0 or not found or not all(found):
            return [], f"cannot query rpm ({out.why()})"
        return [(m["evr"], m["arch"]) for m in found if m], None

    def present(
        self,
        name: str,
        op: str | None = None,
        evr: str | None = None,
        *,
        exact: str | None = None,
        builtin: bool = False,
        why: str = "",
    ) -> CheckResult:
        expectation = "installed"
        if op and evr:
            expectation += f", version {op} {evr}"
        if exact:
            expectation += f", version {exact}"
        found, error = self.installed(name)
        detail = ""
        if error:
            detail = error
        elif not found:
            detail = "not installed" + (f" ({why})" if why else "")
        else:
            versions = [got.split(":", 1)[1] for got, _ in found]  # messages leave out the epoch
            shown = ", ".join(versions)
            if op and evr and not any(satisfies(got, op, evr) for got, _ in found):
                detail = f"installed version is {shown}"
            elif exact and exact not in versions:
                detail = f"installed version is {shown}" + (f" ({why})" if why else "")
        return CheckResult("package", name, expectation, not detail, detail, builtin)

    def absent(self, name: str, *, builtin: bool = False, why: str = "") -> CheckResult:
        if any(char in name for char in "*?["):  # a glob: nothing installed may match it
            # Matched here, by name: `rpm -qa PATTERN` reads a regular expression, in which
            # `?` means "optional" and a leading one lists every package (contract, 1).
            out = self.host.run(
                "rpm -qa --qf %s", "%{NAME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n"
            )
            rows = (line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
            listed = sorted(nevra for package, nevra in rows if fnmatchcase(package, name))
            detail = out.why() if out.rc else ""
            if listed:
                detail = f"installed: {', '.join(listed[:5])}" + (f" ({why})" if why else "")
            return CheckResult("package", name, "absent", not detail, detail, builtin)
        found, error = self.installed(name)
        detail = error or ""
        if found:
            versions = ", ".join(f"{evr.split(':', 1)[1]}.{arch}" for evr, arch in found)
            detail = f"installed: {versions}" + (f" ({why})" if why else "")
        return CheckResult("package", name, "absent", not detail, detail, builtin)

    def package_spec(self, spec: str) -> CheckResult:
        match = _CONSTRAINT.match(spec.strip())
        if not match:
            return CheckResult(
                "package", spec, "installed", False, "cannot read this as NAME [OP VERSION]"
            )
        try:
            return self.present(match["name"], match["op"], match["evr"])
        except ValueError as exc:  # an epoch that is not a number
            return CheckResult("package", spec, "installed", False, f"bad version: {exc}")

    def wanted(self, name: str, want: _Want) -> CheckResult:
        layer = f"layer {want.layer}"
        if want.unknown:
            return CheckResult(
                "package",
                want.unknown,
                "installed",
                False,
                f"cannot tell the package from the file name (not NAME-VERSION-RELEASE.ARCH.rpm; {layer})",
                builtin=True,
            )
        if not want.present:
            return self.absent(name, builtin=True, why=f"{layer} removes it")
        if want.commands_after:
            found, error = self.installed(name)
            if not found and error is None:
                return CheckResult(
                    "package",
                    name,
                    f"installed, unless layer {want.commands_after}'s commands removed it",
                    True,
                    f"not installed: layer {want.commands_after} runs commands after "
                    f"{layer} installed it (an `rpm -e` there is the recipe's own doing)",
                    builtin=True,
                )
        try:
            return self.present(
                name, want.op, want.evr, exact=want.exact, builtin=True, why=f"{layer} installs it"
            )
        except ValueError as exc:
            return CheckResult("package", name, "installed", False, f"bad version: {exc}", True)

    # files

    def file(
        self,
        path: str,
        *,
        exists: bool = True,
        mode: str | None = None,
        owner: str | None = None,
        contains: str | None = None,
        sha256: str | None = None,
        builtin: bool = False,
    ) -> list[CheckResult]:
        def result(expectation: str, detail: str) -> CheckResult:
            return CheckResult("file", shown, expectation, not detail, detail, builtin)

        shown, path = path, self._seen(path)
        probe = self.host.run("test -e %s || test -L %s", path, path)
        there = probe.rc == 0
        if probe.rc not in (0, 1):
            results = [result("exists" if exists else "does not exist", probe.why())]
        elif exists:
            results = [result("exists", "" if there else "missing")]
        else:
            results = [result("does not exist", "exists" if there else "")]
        more = (
            (f"mode {mode}", mode, self._mode),
            (f"owner {owner}", owner, self._owner),
            (f"contains {contains!r}", contains, self._contains),
            (f"content sha256 {(sha256 or '')[:12]}", sha256, self._sha256),
        )
        for expectation, wanted, check in more:
            if wanted is None:
                continue
            if not exists:
                results.append(result(expectation, "contradicts exists: false"))
            elif probe.rc != 0:
                results.append(result(expectation, "missing" if probe.rc == 1 else probe.why()))
            else:
                results.append(result(expectation, check(path, wanted)))
        return results

    def _mode(self, path: str, mode: str) -> str:
        out = self.host.run("stat -L -c %s -- %s", "%a", path)  # -L: the mode of what a link names
        actual = out.stdout.strip()
        if out.rc != 0 or not re.fullmatch(r"[0-7]+", actual):
            return f"cannot stat ({out.why()})"
        return "" if int(actual, 8) == int(mode, 8) else f"mode is {actual.zfill(4)}"

    def _owner(self, path: str, owner: str) -> str:
        # USER[:GROUP] as the recipe wrote it, each a name or a number; without a group only
        # the user is compared. stat prints UNKNOWN for a number the image does not name.
        out = self.host.run("stat -L -c %s -- %s", "%u %g %U %G", path)
        found = out.stdout.split()
        if out.rc != 0 or len(found) != 4:
            return f"cannot stat ({out.why()})"
        uid, gid, user_name, group_name = found
        user, _, group = owner.partition(":")

        def same(wanted: str, number: str, name: str) -> bool:
            return int(wanted) == int(number) if wanted.isdigit() else wanted == name

        if same(user, uid, user_name) and (not group or same(group, gid, group_name)):
            return ""
        names = f"{user_name}:{group_name}"
        return f"owner is {uid}:{gid}" + ("" if "UNKNOWN" in names else f" ({names})")

    def _contains(self, path: str, text: str) -> str:
        out = self.host.run("cat -- %s", path)
        if out.rc != 0:
            return f"cannot read ({out.why()})"
        if text.encode() in out.raw:
            return ""
        return f"text not found in {len(out.raw)} bytes starting {out.stdout[:60]!r}"

    def _sha256(self, path: str, digest: str) -> str:
        out = self.host.run("sha256sum -- %s", path)
        if out.rc != 0 or not out.stdout.strip():
            return f"cannot read ({out.why()})"
        actual = out.stdout.split()[0]
        return "" if actual == digest else f"content sha256 is {actual[:12]}: not the recipe's file"

    # commands

    def command(
        self, argv: tuple[str, ...], exit_code: int, stdout: str | None, timeout: float = 60.0
    ) -> CheckResult:
        line = shlex.join(argv)
        expectation = f"exit {exit_code}" + (f", stdout ~ {stdout!r}" if stdout is not None else "")
        problems = []
        try:
            pattern = re.compile(stdout) if stdout is not None else None
        except re.error as exc:
            return CheckResult(
                "command", line, expectation, False, f"bad regular expression: {exc}"
            )
        out = self.host.run(line, timeout=timeout)  # no args: the line goes unformatted
        if out.timed_out is not None:
            return CheckResult(
                "command", line, expectation, False, f"timed out: still running after {timeout:g} s"
            )
        if out.rc != exit_code:
            problems.append(out.why() if out.rc else "exit 0")
        if pattern is not None and not pattern.search(out.stdout):
            problems.append(f"stdout was {out.stdout.strip()[:_SHOWN]!r}")
        return CheckResult("command", line, expectation, not problems, "; ".join(problems))

    # kernel modules

    def kernel_module(self, module: KernelModule, kernel: str | None) -> CheckResult:
        """Installed for the image's own kernel, where depmod registered it."""
        expectation = f"installed for kernel {kernel or '?'}"
        if kernel is None:
            return CheckResult(
                "module", module.name, expectation, False, "the image's kernel is unknown"
            )
        out = self.host.run("modinfo -k %s -F filename %s", kernel, module.name)
        detail = "" if out.rc == 0 and out.stdout.strip() else out.why()
        return CheckResult("module", module.name, expectation, not detail, detail, True)

    # units

    def unit_state(self, unit: str) -> tuple[bool, str]:
        """(enabled, how we know) for `unit`."""
        note = ""
        # SYSTEMD_OFFLINE: judge from the unit files, do not ask a (missing) systemd over D-Bus.
        out = self.host.run("SYSTEMD_OFFLINE=1 systemctl is-enabled -- %s", unit)
        answer = out.stdout.strip().splitlines()[:1]
        if answer and answer[0] in _UNIT_STATES:
            return answer[0] in _ENABLED_STATES, f"systemctl is-enabled says {answer[0]}"
        if out.rc != 127:  # systemctl is there but gave no state: say so, then look ourselves
            note = f"; systemctl is-enabled did not answer ({out.why()})"
        probe = self.host.run("sh -c %s sh %s", _UNIT_SCRIPT, unit)
        lines = probe.stdout.split("\n")
        if probe.rc != 0 or len(lines) < 2:
            return False, f"cannot look for its symlinks ({probe.why()})"
        state, has_file = lines[0], lines[1] == "file yes"
        if state.startswith("masked "):
            return False, f"masked ({state.removeprefix('masked ')} -> /dev/null){note}"
        if state.startswith("symlink "):
            return True, f"enabled ({state.removeprefix('symlink ')}){note}"
        missing = "" if has_file else "; there is no unit file of that name"
        return False, f"not enabled (no *.wants or *.requires symlink){missing}{note}"

    def unit(self, unit: str, want_enabled: bool, builtin: bool = False) -> CheckResult:
        enabled, how = self.unit_state(unit)
        passed = enabled == want_enabled
        expectation = "enabled" if want_enabled else "disabled"
        return CheckResult("unit", unit, expectation, passed, "" if passed else how, builtin)

    # /var

    def var_empty(self) -> CheckResult:
        expectation = "no files or symlinks (a NestOS host drops /var)"
        # Directories are fine: the host makes its own /var, and ostree's commit keeps empty
        # directories. Nothing else is exempt: a host drops every file, link (and fifo or
        # socket) under /var. Nothing is mounted there (see throwaway_container), so -xdev
        # skips nothing of the image.
        # No /var at all is the emptiest /var: ostree-ext 0.9.1's commit removes an empty one.
        if self.host.run("test -e /var").rc == 1:
            return CheckResult("var", "/var", expectation, True, "", builtin=True)
        out = self.host.run("find /var -xdev %s -type d -print0", "!")
        if out.rc != 0:
            return CheckResult("var", "/var", expectation, False, out.why(), builtin=True)
        paths = [p for p in out.stdout.split("\0") if p]
        detail = ", ".join(paths[:VAR_SHOWN])
        if len(paths) > VAR_SHOWN:
            detail += f" and {len(paths) - VAR_SHOWN} more"
        return CheckResult("var", "/var", expectation, not paths, detail, builtin=True)


def layer_packages(recipe: Recipe, fill: Callable[[str], str] = str) -> dict[str, _Want]:
    """What the layers leave behind, package by package: later layers win.

    Within a layer the commands run as rendered: remove, swap, replace, install, then
    the layer's commands and scripts. `fill` fills build-time values (`{{dist}}`) into
    each spec, as the build did.
    """
    wants: dict[str, _Want] = {}
    for layer in recipe.layers:
        _layer_wants(wants, layer, fill)
        if layer.runs_programs:
            for name, want in wants.items():
                if want.present:
                    wants[name] = replace(want, commands_after=layer.name)
    return wants


def _layer_wants(wants: dict[str, _Want], layer: Layer, fill: Callable[[str], str]) -> None:
    for name in layer.remove:
        wants[name] = _Want(False, layer.name)
    if layer.replace_from:
        for name in layer.replace_from[1]:
            _want_spec(wants, fill(name), layer.name)
    for swap in layer.swap:
        for name in swap.remove:
            wants[name] = _Want(False, layer.name)
        for spec in swap.install:
            _want_spec(wants, fill(spec), layer.name)
    for spec in (*layer.replace, *layer.install):
        _want_spec(wants, fill(spec), layer.name)


def _want_spec(wants: dict[str, _Want], spec: str, layer: str) -> None:
    if is_rpm_url(spec):
        nvr = rpm_file_nvr(spec)
        if nvr is None:
            wants[spec] = _Want(True, layer, unknown=spec)
        else:
            name, version, release = nvr
            wants[name] = _Want(True, layer, exact=f"{version}-{release}")
        return
    match = _CONSTRAINT.match(spec.strip())
    if match:
        wants[match["name"]] = _Want(True, layer, match["op"], match["evr"])
    else:
        wants[spec] = _Want(True, layer, unknown=spec)


def file_checks(host: Runner, path: str, **wanted: Any) -> list[CheckResult]:
    """Built-in checks of one path (exists, mode, owner, contains, sha256), for other modules."""
    return Checks(host).file(path, builtin=True, **wanted)
