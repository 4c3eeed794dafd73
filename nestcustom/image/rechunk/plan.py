"""Which chunk each path of the custom part goes to: a pure function of the image itself.

rpm-ostree's chunking (ostree-ext 0.9.1 `chunking.rs`) gives the largest packages a layer
each and merges the rest into one; newer tools keep layers stable by reading the previous
build's manifest. A host keeps a layer only while its bytes stay the same, so the rule here
needs no previous build and moves as little as possible when one package changes:

- A package's pristine files (owners.py) are its own chunk while the recipe has room for
  it. Past the room, packages are ranked by size class (a power of two, so a version
  update does not reorder them) and name; the smaller ones go to one of `small_buckets`
  buckets chosen by a hash of `name.arch` (not the version): an update rewrites one
  bucket, not all of them.
- Files no package owns (edits, units, scripts' output) go to one of `file_groups` groups
  by a hash of the first two directories they are in: a path keeps its group however the
  recipe's steps are named or ordered, and a directory's files stay together.
- Always-changing state (the RPM database, the user and group files, the linker cache,
  everything outside usr/ and etc/, and any file two steps wrote) is one small last chunk.
- Deletions (whiteouts, opaque directories) are the first chunk, under everything.

Each chunk also writes the custom part's directories above its paths, with their final
metadata, so every chunk that names a directory names it the same way.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from nestcustom.image.rechunk.model import CustomDiff, Member, ancestors, path_key

ChunkKind = Literal["deletions", "package", "bucket", "files", "state"]

STATE_DIRS = ("usr/share/rpm", "usr/lib/sysimage/rpm", "var/lib/rpm")
STATE_FILES = frozenset(
    f"etc/{name}{suffix}"
    for name in ("passwd", "group", "shadow", "gshadow", "subuid", "subgid")
    for suffix in ("", "-")
) | {"etc/ld.so.cache"}


@dataclass(frozen=True)
class Limits:
    max_layers: int = 24  # chunks of the custom part, the base's layers not counted
    small_buckets: int = 4
    file_groups: int = 4


@dataclass(frozen=True)
class Chunk:
    name: str
    kind: ChunkKind
    packages: tuple[str, ...]  # name.arch of the packages whose files it holds
    members: tuple[Member, ...]  # sorted; directories above its paths included


@dataclass(frozen=True)
class Plan:
    chunks: tuple[Chunk, ...]  # lowest first


class PlanError(ValueError):
    """The limits leave no room for the custom part."""


def plan(diff: CustomDiff, owners: Mapping[str, str], limits: Limits = Limits()) -> Plan:
    """`owners`: path -> `name.arch` of the package whose pristine content it is."""
    entries = {m.path: m for m in diff.entries}
    writers = dict(diff.writers)
    units = _units(diff, owners, writers)
    for key in sorted(k for k in units if k[0] == "top"):
        group = ("files", str(_bucket(key[1], limits.file_groups)))
        units.setdefault(group, []).extend(units.pop(key))
    packages = sorted(k for k in units if k[0] == "package")
    others = sorted(k for k in units if k[0] == "files")
    fixed = (1 if ("state", "") in units else 0) + (1 if diff.deletions or diff.opaque else 0)
    room = limits.max_layers - fixed - len(others)
    if len(packages) > room:
        room -= limits.small_buckets
        if room < 1:
            raise PlanError(
                f"max-layers {limits.max_layers} leaves no layer for a package of its own: "
                f"{fixed + len(others)} layers hold deletions, state and unpackaged files, "
                f"{limits.small_buckets} hold small packages"
            )
        ranked = sorted(packages, key=lambda k: (-_size_class(units[k]), k[1]))
        for key in ranked[room:]:
            bucket = ("bucket", str(_bucket(key[1], limits.small_buckets)))
            units[bucket] = units.get(bucket, []) + units.pop(key)
    chunks: list[Chunk] = []
    if diff.deletions or diff.opaque:
        marked = [*diff.deletions, *diff.opaque, *(entries[m.path] for m in diff.opaque)]
        chunks.append(_chunk("deletions", "deletions", (), marked, entries))
    for kind in ("package", "bucket", "files", "state"):
        for key in sorted((k for k in units if k[0] == kind), key=_order):
            members = units[key]
            owned = tuple(sorted({owners[m.path] for m in members if m.path in owners}))
            name = _name(kind, key[1], owned, members)
            chunks.append(_chunk(name, kind, owned if kind != "files" else (), members, entries))
    return Plan(tuple(chunks))


def _top(path: str) -> str:
    """The first two directories a path is in (or is): `usr/lib/x/y` -> `usr/lib`."""
    return "/".join(path.split("/")[:-1][:2]) or path


def _units(
    diff: CustomDiff, owners: Mapping[str, str], writers: Mapping[str, tuple[int, ...]]
) -> dict[tuple[str, str], list[Member]]:
    """Every entry in one unit: ("package", name.arch), ("top", first two directories) or
    ("state", "").

    A directory with entries below it is written by the chunks of those entries, so it is
    a unit's member only when nothing below it is in the custom part. The names of one
    file (`inode`) stay together, in the unit of the name that sorts first."""
    parents = {a for m in diff.entries for a in ancestors(m.path)}
    first_name: dict[str, str] = {}
    for m in diff.entries:
        if m.inode and m.inode not in first_name:
            first_name[m.inode] = m.path  # entries are sorted: the first is the smallest
    units: dict[tuple[str, str], list[Member]] = defaultdict(list)
    for m in diff.entries:
        if m.kind == "dir" and m.path in parents:
            continue
        path = first_name.get(m.inode, m.path) if m.inode else m.path
        units[_unit_of(path, owners, writers)].append(m)
    return dict(units)


def _unit_of(
    path: str, owners: Mapping[str, str], writers: Mapping[str, tuple[int, ...]]
) -> tuple[str, str]:
    if _is_state(path):
        return ("state", "")
    owner = owners.get(path)
    if owner is not None:
        return ("package", owner)
    if len(writers.get(path, ())) > 1:
        return ("state", "")
    return ("top", _top(path))  # grouped into `files` buckets by plan()


def _is_state(path: str) -> bool:
    if path in STATE_FILES:
        return True
    if any(path == d or path.startswith(d + "/") for d in STATE_DIRS):
        return True
    return path.split("/")[0] not in ("usr", "etc")


def _size_class(members: Iterable[Member]) -> int:
    return sum(m.size for m in members).bit_length()


def _bucket(key: str, buckets: int) -> int:
    # Paths carry a name's bytes that are not UTF-8 as surrogates: hash those bytes.
    return (
        int(hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16], 16) % buckets
    )


def _order(key: tuple[str, str]) -> tuple[int, str]:
    return (int(key[1]), "") if key[0] in ("bucket", "files") else (0, key[1])


def _name(kind: str, key: str, owned: tuple[str, ...], members: Iterable[Member]) -> str:
    if kind == "package":
        return key
    if kind == "bucket":
        return f"small packages {key}: " + " ".join(owned)
    if kind == "files":
        return f"files {key}: " + " ".join(sorted({"/" + _top(m.path) for m in members}))
    return "state"


def _chunk(
    name: str,
    kind: ChunkKind,
    packages: tuple[str, ...],
    members: Iterable[Member],
    entries: Mapping[str, Member],
) -> Chunk:
    """The chunk with the custom part's directories above its members added."""
    chosen = {(m.path, m.kind): m for m in members}
    for m in list(chosen.values()):
        for above in ancestors(m.path):
            directory = entries.get(above)
            if directory is not None:
                chosen.setdefault((above, "dir"), directory)
    ordered = sorted(chosen.values(), key=lambda m: (path_key(m.path), m.kind != "dir"))
    return Chunk(name, kind, packages, tuple(ordered))
