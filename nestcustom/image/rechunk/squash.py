"""Squashing an image's custom layers into one difference from its base, as overlay sees it.

Layers are applied bottom to top with OCI's rules (image-spec `layer.md`): a layer's
whiteouts and opaque markers apply to the layers below it, never to entries of the same
layer, so each layer's deletions go first. What stays is only what differs from the base:
paths a recipe made and removed again leave nothing, not even a whiteout.

Three cases need care, because one squashed layer must show what the stack showed:
- a base directory removed and later made again is *opaque*: the base's contents stay
  hidden under the new directory (overlay does the same when it makes it);
- a base directory first replaced by a file and later by a directory again is opaque for
  the same reason (the file stopped overlay's merge);
- names of one file (tar hardlinks) keep one identity: a later layer that rewrites one
  name leaves the others with the old content, as overlay's copy-up does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from nestcustom.image.rechunk.model import (
    BaseIndex,
    CustomDiff,
    Member,
    ancestors,
    is_under,
    path_key,
)


class SquashError(ValueError):
    """A layer stack that overlay could not have produced."""


def squash(layers: Iterable[Sequence[Member]], base: BaseIndex) -> CustomDiff:
    """`layers` lowest first, each in its tar's order."""
    state = _Squash(base)
    for index, layer in enumerate(layers):
        state.apply(index, layer)
    return state.result()


class _Squash:
    def __init__(self, base: BaseIndex) -> None:
        self.base = base
        self.tree: dict[str, Member] = {}
        self.writers: dict[str, list[int]] = {}
        self.deleted: dict[str, Member] = {}  # base paths removed
        self.opaque: dict[str, Member] = {}  # base directories whose base contents are hidden
        # Directories that may hold entries (a superset): only their removal needs a scan.
        self.parents: set[str] = set()

    def apply(self, index: int, layer: Sequence[Member]) -> None:
        for member in layer:
            if member.kind == "whiteout":
                self._whiteout(member)
            elif member.kind == "opaque":
                self._opaque(member)
        here: dict[str, Member] = {}  # this layer's entries, for its hardlinks
        for member in layer:
            if member.kind not in ("whiteout", "opaque"):
                self._add(index, self._resolve(index, member, here), here)

    def result(self) -> CustomDiff:
        def ordered(members: Iterable[Member]) -> tuple[Member, ...]:
            return tuple(sorted(members, key=lambda m: path_key(m.path)))

        return CustomDiff(
            entries=ordered(self.tree.values()),
            deletions=ordered(self.deleted.values()),
            opaque=ordered(self.opaque.values()),
            writers=tuple(
                (path, tuple(self.writers[path])) for path in sorted(self.tree, key=path_key)
            ),
        )

    def _base_reaches(self, path: str) -> bool:
        """Whether the base's `path` still shows through what the custom layers did so far
        (a custom file at `path` itself hides it too, but a later whiteout must still
        remove the base's: so that is not asked here)."""
        if path not in self.base.paths or path in self.deleted:
            return False
        return not any(a in self.deleted or a in self.opaque for a in ancestors(path))

    def _whiteout(self, member: Member) -> None:
        path = member.path
        reaches = path in self.deleted or self._base_reaches(path)
        self._drop_entry(path)
        self._drop_records(path, itself=True)
        if reaches:
            self.deleted[path] = member

    def _opaque(self, member: Member) -> None:
        path = member.path
        self._drop_under(path)
        self._drop_records(path, itself=False)
        if path in self.base.dirs and self._base_reaches(path):
            self.opaque[path] = member

    def _resolve(self, index: int, member: Member, here: dict[str, Member]) -> Member:
        """A hardlink as the file it names, both names marked as one inode."""
        if member.kind != "hardlink":
            return member
        target = here.get(member.linkname)
        if target is None or target.kind != "file":
            raise SquashError(
                f"custom layer {index}: {member.path} is a hardlink to {member.linkname!r}, "
                "which is not a file earlier in the same layer"
            )
        if not target.inode:
            marked = replace(target, inode=f"{index}:{target.path}")
            here[target.path] = marked
            if self.tree.get(target.path) is target:
                self.tree[target.path] = marked
            target = marked
        return replace(target, path=member.path)

    def _add(self, index: int, member: Member, here: dict[str, Member]) -> None:
        path = member.path
        for above in ancestors(path):
            if above in self.deleted:
                raise SquashError(
                    f"custom layer {index}: {path} is inside {above}, which a lower layer "
                    "removed and this one does not make again"
                )
        before = self.tree.get(path)
        if member.kind == "dir":
            if path in self.deleted:
                removed = self.deleted.pop(path)
                if path in self.base.dirs:  # a directory over a base file hides nothing
                    self.opaque[path] = self._marker(removed, member)
            elif (
                before is not None
                and before.kind != "dir"
                and path in self.base.dirs
                and self._base_reaches(path)
            ):
                self.opaque[path] = self._marker(member, member)
        else:
            if path in self.parents:
                self._drop_under(path)
            # A non-directory hides whatever the base had at and under its path.
            self._drop_records(path, itself=True)
        self.tree[path] = member
        self.parents.update(ancestors(path))
        seen = self.writers.setdefault(path, [])
        if index not in seen:
            seen.append(index)
        here[path] = member

    @staticmethod
    def _marker(header: Member, directory: Member) -> Member:
        return replace(header, path=directory.path, kind="opaque", mode=directory.mode)

    def _drop_entry(self, path: str) -> None:
        self.tree.pop(path, None)
        self.writers.pop(path, None)
        if path in self.parents:
            self._drop_under(path)

    def _drop_under(self, top: str) -> None:
        if top not in self.parents:
            return
        for path in [p for p in self.tree if is_under(p, top)]:
            del self.tree[path]
            self.writers.pop(path, None)

    def _drop_records(self, top: str, itself: bool) -> None:
        for records in (self.deleted, self.opaque):
            for path in [p for p in records if is_under(p, top) or (itself and p == top)]:
                del records[path]
