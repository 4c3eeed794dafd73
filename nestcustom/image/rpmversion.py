"""RPM version comparison (rpmvercmp), so constraints are judged as rpm judges them.

Pure functions: `rpm_vercmp` for one version or release string, `compare_evr`
for `[epoch:]version[-release]`, `satisfies` for a constraint, `rpm_file_nvr`
for the N-V-R an RPM file name states.
"""

from __future__ import annotations

import re
import urllib.parse
from posixpath import basename

# name-version-release.arch.rpm: version and release never contain '-'.
_RPM_FILE = re.compile(
    r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?P<arch>[^.-]+)\.rpm$"
)


def _segments(version: str) -> list[str]:
    # Anything else (., -, _, +, non-ASCII) only separates segments, as in rpm.
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
        if x.isdigit() != y.isdigit():  # a number is newer than letters
            return 1 if x.isdigit() else -1
        if x.isdigit():
            x, y = x.lstrip("0") or "0", y.lstrip("0") or "0"
            if len(x) != len(y):
                return 1 if len(x) > len(y) else -1
        if x != y:
            return 1 if x > y else -1
    return 0


def _split_evr(evr: str) -> tuple[int, str, str | None]:
    epoch, _, rest = evr.partition(":") if ":" in evr else ("0", "", evr)
    version, _, release = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), version, release or None


def compare_evr(a: str, b: str) -> int:
    """Compare `[epoch:]version[-release]`; a side without a release matches any release."""
    ea, va, ra = _split_evr(a)
    eb, vb, rb = _split_evr(b)
    if ea != eb:
        return 1 if ea > eb else -1
    result = rpm_vercmp(va, vb)
    if result or ra is None or rb is None:
        return result
    return rpm_vercmp(ra, rb)


def satisfies(installed: str, op: str, wanted: str) -> bool:
    order = compare_evr(installed, wanted)
    return {"=": order == 0, "<": order < 0, ">": order > 0, "<=": order <= 0, ">=": order >= 0}[op]


def rpm_file_nvr(url: str) -> tuple[str, str, str] | None:
    """(name, version, release) from an RPM URL's file name, or None if it is not N-V-R.A.rpm."""
    name = urllib.parse.unquote(basename(urllib.parse.urlsplit(url).path))
    match = _RPM_FILE.match(name)
    return (match["name"], match["version"], match["release"]) if match else None
