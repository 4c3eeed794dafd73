"""Two package sets compared as rpm orders versions: added, removed, upgraded, downgraded.

Pure. Packages are matched by name and architecture; a name installed more
than once (kernels, multilib) is compared version by version, so only the
instances that differ show. A changed architecture (noarch -> x86_64) is a
removal and an addition. For an upgrade, the changelog entries newer than the
old package's newest entry are the ones a reviewer wants to read, as
`rpm-ostree db diff --changelogs` shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nestcustom.image.rpmdb import ChangelogEntry, Package
from nestcustom.image.rpmversion import compare_evr


@dataclass(frozen=True)
class Change:
    name: str
    arch: str
    old: str | None  # EVR before, None when added
    new: str | None  # EVR after, None when removed
    changelog: tuple[ChangelogEntry, ...] = ()
    stated: str = ""  # a kind known otherwise ("changed": versions that do not compare)

    @property
    def kind(self) -> str:
        if self.stated:
            return self.stated
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "upgraded" if compare_evr(self.new, self.old) > 0 else "downgraded"


@dataclass(frozen=True)
class PackageDiff:
    changes: tuple[Change, ...]  # sorted by name

    def of_kind(self, kind: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == kind)


def diff_packages(old: Iterable[Package], new: Iterable[Package]) -> PackageDiff:
    before = _by_key(old)
    after = _by_key(new)
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        name, arch = key
        olds = sorted(before.get(key, []), key=_evr_key)
        news = sorted(after.get(key, []), key=_evr_key)
        common = {p.evr for p in olds} & {p.evr for p in news}
        olds = [p for p in olds if p.evr not in common]
        news = [p for p in news if p.evr not in common]
        # Pair what is left in version order: one old and one new instance are an update.
        while olds and news:
            changes.append(Change(name, arch, olds.pop(0).evr, news.pop(0).evr))
        changes += [Change(name, arch, p.evr, None) for p in olds]
        changes += [Change(name, arch, None, p.evr) for p in news]
    return PackageDiff(tuple(changes))


def _by_key(packages: Iterable[Package]) -> dict[tuple[str, str], list[Package]]:
    grouped: dict[tuple[str, str], list[Package]] = {}
    for package in packages:
        grouped.setdefault((package.name, package.arch), []).append(package)
    return grouped


class _Evr:
    def __init__(self, evr: str) -> None:
        self.evr = evr

    def __lt__(self, other: _Evr) -> bool:
        return compare_evr(self.evr, other.evr) < 0


def _evr_key(package: Package) -> _Evr:
    return _Evr(package.evr)


def new_entries(
    old: tuple[ChangelogEntry, ...], new: tuple[ChangelogEntry, ...]
) -> tuple[ChangelogEntry, ...]:
    """The entries of `new` that are newer than everything in `old` (all of them if old has none)."""
    newest = max((e.time for e in old), default=None)
    if newest is None:
        return new
    return tuple(e for e in new if e.time > newest)


def with_changelogs(
    diff: PackageDiff,
    old_logs: Mapping[tuple[str, str], tuple[ChangelogEntry, ...]],
    new_logs: Mapping[tuple[str, str], tuple[ChangelogEntry, ...]],
) -> PackageDiff:
    """Attach to each upgrade the changelog entries between its two versions."""
    changes = []
    for change in diff.changes:
        if change.kind == "upgraded" and change.old and change.new:
            entries = new_entries(
                old_logs.get((change.name, change.old), ()),
                new_logs.get((change.name, change.new), ()),
            )
            change = Change(change.name, change.arch, change.old, change.new, entries)
        changes.append(change)
    return PackageDiff(tuple(changes))
