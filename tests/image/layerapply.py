"""A reference applier of OCI layers, for tests: image-spec's "applying changesets".

Deliberately plain and separate from the product's squash: a layer's whiteouts and opaque
markers first remove from what lies below, then its entries are written in order; a
directory written over a directory only changes its metadata; anything else replaces the
path and whatever was under it. A tar hardlink gives the new name the very node of its
target, so a later layer that rewrites one name leaves the other as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nestcustom.image.rechunk.model import Member, is_under


@dataclass(frozen=True)
class Node:
    kind: str
    mode: int
    uid: int
    gid: int
    mtime: int
    linkname: str
    content: str  # the file's sha256 field (tests put a token there)
    xattrs: tuple[tuple[str, bytes], ...]


Tree = dict[str, Node]


def node(member: Member) -> Node:
    return Node(
        member.kind,
        member.mode,
        member.uid,
        member.gid,
        member.mtime,
        member.linkname if member.kind == "symlink" else "",
        member.sha256,
        member.xattrs,
    )


def apply(tree: Tree, layer: Sequence[Member]) -> Tree:
    """`tree` with `layer` applied (a new dict; nodes are shared, never copied)."""
    out = dict(tree)
    for member in layer:
        if member.kind == "whiteout":
            _remove(out, member.path, itself=True)
        elif member.kind == "opaque":
            _remove(out, member.path, itself=False)
    by_inode: dict[str, Node] = {}
    for member in layer:
        if member.kind in ("whiteout", "opaque"):
            continue
        if member.kind == "hardlink":
            new = out[member.linkname]
        elif member.inode and member.inode in by_inode:
            new = by_inode[member.inode]
        else:
            new = node(member)
            if member.inode:
                by_inode[member.inode] = new
        old = out.get(member.path)
        if old is not None and not (old.kind == "dir" and new.kind == "dir"):
            _remove(out, member.path, itself=True)
        out[member.path] = new
    return out


def apply_all(tree: Tree, layers: Iterable[Sequence[Member]]) -> Tree:
    for layer in layers:
        tree = apply(tree, layer)
    return tree


def _remove(tree: Tree, top: str, itself: bool) -> None:
    for path in [p for p in tree if is_under(p, top) or (itself and p == top)]:
        del tree[path]


def links(tree: Tree) -> set[frozenset[str]]:
    """The groups of paths that are one file (two names or more)."""
    groups: dict[int, set[str]] = {}
    for path, item in tree.items():
        if item.kind == "file":
            groups.setdefault(id(item), set()).add(path)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def view(tree: Tree) -> tuple[dict[str, Node], set[frozenset[str]]]:
    """What a user sees: every path's node, and which paths are one file."""
    return dict(tree), links(tree)
