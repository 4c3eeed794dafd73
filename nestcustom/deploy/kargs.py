"""Kernel arguments a rollout applies: what the image asks for, what the host has, and the
`rpm-ostree kargs` options that turn one into the other (contract section 2, "Kernel
arguments"). Pure functions of plain values, like decide.py.

An image built from a recipe with `kernel-arguments:` carries them in the
io.nestcustom.kernel-arguments label (and its `append` list as a bootc kargs.d file).
rpm-ostree's rebase ignores kargs.d; bootc applies the difference between the booted
image's kargs.d and the new one's (lib/src/kargs.rs get_kargs). nestcustom does the
same on rpm-ostree hosts: an argument the new image appends and the booted one did not
is added, one the booted image appended and the new one does not is removed; `delete`
and `replace` apply as written. The plan is computed against the staged deployment's
arguments (`rpm-ostree kargs` prints them) and applied to it, before the reboot.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from nestcustom.errors import BadInputError

LABEL = "io.nestcustom.kernel-arguments"
KARGS_D = "/usr/lib/bootc/kargs.d"
# Set per deployment by ostree and the boot loader: never compared, never changed.
MANAGED = ("BOOT_IMAGE", "ostree", "initrd")


@dataclass(frozen=True)
class ImageKargs:
    """The label of the image a rollout moves hosts to."""

    append: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    match_architectures: tuple[str, ...] = ()

    def for_arch(self, arch: str) -> ImageKargs:
        """What applies to a host of `arch`: all, or nothing (bootc's match-architectures)."""
        if not self.match_architectures or arch in self.match_architectures:
            return self
        return ImageKargs()


def parse_label(text: str | None) -> ImageKargs | None:
    """The label's arguments, None when the image has no label (nothing to apply)."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        lists = {key: data.get(key, []) for key in ("append", "delete", "replace")}
        arches = data.get("match-architectures", [])
        if not all(isinstance(v, list) and all(isinstance(a, str) for a in v)
                   for v in (*lists.values(), arches)):  # fmt: skip
            raise TypeError("lists of text expected")
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadInputError(
            f"the image's {LABEL} label is not what nestcustom writes: {exc}",
            "rebuild the image with nestcustom, or remove the label",
        ) from None
    bad = [a for v in lists.values() for a in v if not a or any(c.isspace() for c in a)]
    if bad:
        raise BadInputError(f"the image's {LABEL} label holds a bad argument: {bad[0]!r}")
    return ImageKargs(
        tuple(lists["append"]), tuple(lists["delete"]), tuple(lists["replace"]), tuple(arches)
    )


# -- bootc's kargs.d files ------------------------------------------------------------------


def toml_kargs(text: str) -> tuple[list[str], list[str] | None]:
    """(kargs, match-architectures or None) of a kargs.d file: bootc's Config, whose only
    keys are two arrays of strings (lib/src/kargs.rs, deny_unknown_fields)."""
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not TOML: {exc}") from None
    unknown = set(values) - {"kargs", "match-architectures"}
    if unknown or "kargs" not in values:
        raise ValueError(
            f"bootc reads kargs = [...] and match-architectures only, not {sorted(unknown)}"
        )
    for key, value in values.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{key}: only strings may be listed, not {value!r:.40}")
    arches = values.get("match-architectures")
    return list(values["kargs"]), list(arches) if arches is not None else None


def kargsd_appends(files: tuple[tuple[str, str], ...], arch: str) -> tuple[str, ...]:
    """The arguments a root's kargs.d appends on `arch`: its *.toml files in name order
    (bootc's get_kargs_in_root). A file that cannot be read is refused with its name."""
    found: list[str] = []
    for name, text in sorted(files):
        if not name.endswith(".toml"):
            continue
        try:
            kargs, arches = toml_kargs(text)
        except ValueError as exc:
            raise BadInputError(f"{KARGS_D}/{name} on the host: {exc}") from None
        if arches is None or arch in arches:
            found += kargs
    return tuple(found)


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KargsPlan:
    options: tuple[str, ...]  # for `rpm-ostree kargs`; empty: nothing to change
    present: tuple[str, ...]  # must be on the command line after the reboot
    absent: tuple[str, ...]  # must not be (KEY: no bare KEY; KEY=VALUE: not that value)

    def summary(self) -> str:
        plus = [f"+{a}" for a in self.present]
        minus = [f"-{a}" for a in self.absent]
        return " ".join(plus + minus) or "unchanged"


def _key(arg: str) -> str:
    return arg.split("=", 1)[0]


def plan(image: ImageKargs, booted_appends: tuple[str, ...], staged: list[str]) -> KargsPlan:
    """How to take the staged deployment's arguments to what the image asks for (`image`
    already narrowed to the host's architecture)."""
    added = [a for a in image.append if a not in booted_appends]
    removed = [a for a in booted_appends if a not in image.append]
    final = list(staged)
    for arg in (*removed, *image.delete):
        final = [a for a in final if a != arg]
    replaced: list[str] = []
    gone: list[str] = []
    # (old, new) pairs rpm-ostree can replace in place (`--replace=KEY=OLD=NEW`): a
    # delete and an append would move the argument to the end, and for some keys the
    # position means something (the last console= is the main console).
    swaps: list[tuple[str, str]] = []
    for arg in image.replace:
        key, _, value = arg.partition("=")
        if "=" in value:  # KEY=OLD=NEW, as rpm-ostree reads it: that one value
            old, _, new = value.partition("=")
            if f"{key}={old}" in final and f"{key}={new}" not in staged and new != old:
                swaps.append((f"{key}={old}", f"{key}={new}"))
            final = [f"{key}={new}" if a == f"{key}={old}" else a for a in final]
            replaced.append(f"{key}={new}")
            gone.append(f"{key}={old}")
            continue
        same = [a for a in final if _key(a) == key]
        # rpm-ostree splits KEY=OLD=NEW at the first '=' after KEY: an old value holding
        # '=' cannot be named that way, so that one is deleted and appended instead.
        old_value = same[0].partition("=")[2] if same else ""
        if (
            same
            and "=" in same[0]
            and "=" not in old_value
            and same[0] != arg
            and arg not in staged
        ):
            swaps.append((same[0], arg))  # the first value in place, any others deleted
        at = next((i for i, a in enumerate(final) if _key(a) == key), len(final))
        final = [a for a in final if _key(a) != key]
        final.insert(at, arg)
        replaced.append(arg)
    for arg in added:
        if arg not in final:
            final.append(arg)
    # rpm-ostree applies the replaces before --append-if-missing and --delete-if-present.
    olds, news = {o for o, _ in swaps}, {n for _, n in swaps}
    options = [f"--replace={o}={n.partition('=')[2]}" for o, n in swaps]
    options += [
        f"--delete-if-present={a}"
        for a in dict.fromkeys(staged)
        if a not in final and a not in olds
    ]
    options += [
        f"--append-if-missing={a}"
        for a in dict.fromkeys(final)
        if a not in staged and a not in news
    ]
    present = tuple(dict.fromkeys((*added, *replaced, *(a for a in image.append if a in final))))
    absent = tuple(dict.fromkeys(a for a in (*removed, *image.delete, *gone) if a not in final))
    return KargsPlan(tuple(options), present, absent)


def problems(plan_: KargsPlan, cmdline: str) -> list[str]:
    """What of the plan a command line (or `rpm-ostree kargs`) does not show."""
    args = cmdline.split()
    found = [f"{a} is missing" for a in plan_.present if a not in args]
    return found + [f"{a} is still there" for a in plan_.absent if a in args]


def comparable(cmdline: str) -> list[str]:
    """A command line without what ostree and the boot loader set per deployment."""
    return [a for a in cmdline.split() if _key(a) not in MANAGED]
