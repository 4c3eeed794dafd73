"""Squashing custom layers: the base plus the one squashed difference shows exactly what the
base plus the layer stack showed, and the difference holds nothing the base does not need.

The stacks are made the way podman's layer tars are: a layer removes (whiteouts, opaque
directories with their directory) and then writes entries under directories that exist,
each path once, hardlinks to files written before them in the same layer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestcustom.image.rechunk.model import BaseIndex, CustomDiff, Member, ancestors, is_under
from nestcustom.image.rechunk.squash import SquashError, squash
from tests.image import layerapply
from tests.image.layerapply import Tree

NAMES = ("a", "b", "c")


def entry(
    path: str, kind: str = "file", content: str = "", mode: int = 0o644, **more: object
) -> Member:
    return Member(path=path, kind=kind, mode=mode, uid=0, gid=0, mtime=0, sha256=content, **more)  # type: ignore[arg-type]


def mkdir(path: str, mode: int = 0o755) -> Member:
    return entry(path, "dir", mode=mode)


def gone(path: str) -> Member:
    return entry(path, "whiteout", mode=0)


def opaque(path: str) -> Member:
    return entry(path, "opaque", mode=0o755)


def index_of(base: list[Member]) -> BaseIndex:
    return BaseIndex(
        paths=frozenset(m.path for m in base),
        dirs=frozenset(m.path for m in base if m.kind == "dir"),
    )


def as_layer(diff: CustomDiff) -> list[Member]:
    """The squashed difference as one layer: removals first, as its tar would hold them."""
    return [*diff.deletions, *diff.opaque, *diff.entries]


def check_same_view(base: list[Member], layers: list[list[Member]]) -> CustomDiff:
    diff = squash(layers, index_of(base))
    start = layerapply.apply({}, base)
    stacked = layerapply.apply_all(start, layers)
    squashed = layerapply.apply(start, as_layer(diff))
    assert layerapply.view(squashed) == layerapply.view(stacked)
    assert {m.path for m in diff.deletions} <= index_of(base).paths
    assert {m.path for m in diff.opaque} <= index_of(base).dirs
    assert_one_valid_layer(diff)
    return diff


def assert_one_valid_layer(diff: CustomDiff) -> None:
    """What one tar can hold, and no record another one already implies."""
    kinds = {m.path: m.kind for m in diff.entries}
    records = [m.path for m in (*diff.deletions, *diff.opaque)]
    for path in records:
        assert not any(is_under(path, other) for other in records), f"{path}: already hidden"
        assert not any(kinds.get(a, "dir") != "dir" for a in ancestors(path)), (
            f"{path}: under a file"
        )
    assert not {m.path for m in diff.deletions} & set(kinds), "a path both removed and written"
    assert all(kinds.get(m.path) == "dir" for m in diff.opaque), (
        "an opaque marker without its directory"
    )


BASE = [mkdir("etc"), entry("etc/os-release", content="os"), mkdir("usr"), mkdir("usr/lib"),
        entry("usr/lib/old.so", content="old"), mkdir("usr/share"), mkdir("usr/share/doc"),
        entry("usr/share/doc/README", content="doc")]  # fmt: skip


def test_a_file_made_and_removed_inside_the_recipe_leaves_nothing() -> None:
    diff = check_same_view(
        BASE,
        [[mkdir("usr/lib", 0o700), entry("usr/lib/tmp.so", content="t")], [gone("usr/lib/tmp.so")]],
    )
    assert [m.path for m in diff.entries] == ["usr/lib"]
    assert diff.deletions == ()


def test_a_base_file_removed_is_one_whiteout() -> None:
    diff = check_same_view(BASE, [[mkdir("usr/lib"), gone("usr/lib/old.so")]])
    assert [m.path for m in diff.deletions] == ["usr/lib/old.so"]


def test_removing_a_base_path_twice_keeps_it_removed() -> None:
    diff = check_same_view(BASE, [[gone("usr/lib/old.so")], [gone("usr/lib/old.so")]])
    assert [m.path for m in diff.deletions] == ["usr/lib/old.so"]


def test_a_base_directory_removed_and_made_again_is_opaque() -> None:
    diff = check_same_view(
        BASE,
        [[gone("usr/share/doc")], [mkdir("usr/share/doc", 0o750), entry("usr/share/doc/NEW")]],
    )
    assert [m.path for m in diff.opaque] == ["usr/share/doc"]
    assert diff.opaque[0].mode == 0o750
    assert diff.deletions == ()


def test_what_an_opaque_directory_hides_needs_no_record_of_its_own() -> None:
    base = [mkdir("a"), mkdir("a/d"), entry("a/d/f", content="f")]
    diff = check_same_view(
        base,
        [[gone("a")], [mkdir("a"), mkdir("a/d")], [opaque("a/d"), mkdir("a/d")]],
    )
    assert ([m.path for m in diff.opaque], diff.deletions) == (["a"], ())


def test_a_base_directory_replaced_by_a_file_then_a_directory_is_opaque() -> None:
    diff = check_same_view(BASE, [[entry("usr/share/doc", content="f")], [mkdir("usr/share/doc")]])
    assert [m.path for m in diff.opaque] == ["usr/share/doc"]


def test_a_file_over_a_base_directory_needs_no_record() -> None:
    diff = check_same_view(BASE, [[entry("usr/share/doc", content="f")]])
    assert (diff.deletions, diff.opaque) == ((), ())


def test_an_opaque_directory_of_a_layer_hides_the_base_and_the_layers_below() -> None:
    diff = check_same_view(
        BASE,
        [
            [entry("usr/share/doc/MINE", content="m")],
            [opaque("usr/share/doc"), mkdir("usr/share/doc"), entry("usr/share/doc/LAST")],
        ],
    )
    assert [m.path for m in diff.entries if m.path.startswith("usr/share/doc/")] == [
        "usr/share/doc/LAST"
    ]
    assert [m.path for m in diff.opaque] == ["usr/share/doc"]


def test_names_of_one_file_stay_one_file_until_a_layer_rewrites_one() -> None:
    one = entry("usr/lib/x", content="v1")
    link = Member(
        path="usr/lib/y", kind="hardlink", mode=0, uid=0, gid=0, mtime=0, linkname="usr/lib/x"
    )
    kept = check_same_view(BASE, [[one, link]])
    assert {m.path: m.inode for m in kept.entries if m.path.startswith("usr/lib/")} == {
        "usr/lib/x": "0:usr/lib/x",
        "usr/lib/y": "0:usr/lib/x",
    }
    split = check_same_view(BASE, [[one, link], [entry("usr/lib/x", content="v2")]])
    by_path = {m.path: m for m in split.entries}
    assert (by_path["usr/lib/x"].sha256, by_path["usr/lib/y"].sha256) == ("v2", "v1")


def test_each_path_remembers_the_layers_that_wrote_it() -> None:
    diff = squash(
        [
            [mkdir("etc"), entry("etc/ld.so.cache")],
            [entry("etc/a")],
            [mkdir("etc"), entry("etc/ld.so.cache")],
        ],
        index_of(BASE),
    )
    assert dict(diff.writers) == {"etc": (0, 2), "etc/ld.so.cache": (0, 2), "etc/a": (1,)}


def test_a_hardlink_to_nothing_earlier_in_its_layer_is_refused_with_both_paths() -> None:
    link = Member(
        path="usr/lib/y", kind="hardlink", mode=0, uid=0, gid=0, mtime=0, linkname="usr/lib/x"
    )
    with pytest.raises(SquashError, match=r"layer 1: usr/lib/y .* 'usr/lib/x'"):
        squash([[entry("usr/lib/x")], [link]], index_of(BASE))


def test_an_entry_inside_a_removed_directory_is_refused() -> None:
    with pytest.raises(SquashError, match="usr/share/doc/x is inside usr/share/doc"):
        squash([[gone("usr/share/doc")], [entry("usr/share/doc/x")]], index_of(BASE))


# Random stacks -------------------------------------------------------------------------


def _dirs(tree: Tree) -> list[str]:
    return ["", *sorted(p for p, n in tree.items() if n.kind == "dir")]


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


@st.composite
def stacks(draw: st.DrawFn) -> tuple[list[Member], list[list[Member]]]:
    tokens = st.sampled_from(["c1", "c2", "c3"])
    modes = st.sampled_from([0o644, 0o755, 0o4755])
    base: list[Member] = []
    tree: Tree = {}
    for _ in range(draw(st.integers(0, 10))):
        path = _join(draw(st.sampled_from(_dirs(tree))), draw(st.sampled_from(NAMES)))
        if path not in tree:
            made = mkdir(path) if draw(st.booleans()) else entry(path, content=draw(tokens))
            base.append(made)
            tree = layerapply.apply(tree, [made])
    layers: list[list[Member]] = []
    for _ in range(draw(st.integers(1, 4))):
        layer: list[Member] = []
        removed: set[str] = set()
        for _ in range(draw(st.integers(0, 2))):
            if not tree:
                break
            path = draw(st.sampled_from(sorted(tree)))
            if any(
                path == r or path.startswith(r + "/") or r.startswith(path + "/") for r in removed
            ):
                continue  # a layer removes a path once, and nothing inside what it removes
            if tree[path].kind == "dir" and draw(st.booleans()):
                made_here = [opaque(path), mkdir(path, draw(modes))]
            else:
                made_here = [gone(path)]
            removed.add(path)
            layer += made_here
            tree = layerapply.apply(tree, made_here)
        written = {m.path for m in layer}
        for _ in range(draw(st.integers(0, 6))):
            path = _join(draw(st.sampled_from(_dirs(tree))), draw(st.sampled_from(NAMES)))
            if path in written or path in removed:
                continue
            kind = draw(st.sampled_from(["file", "dir", "symlink", "hardlink"]))
            if kind != "dir" and any(w.startswith(path + "/") for w in written):
                continue  # one layer's tar never holds a path and, later, a file above it
            files = [m.path for m in layer if m.kind == "file"]
            if kind == "hardlink" and files:
                made = Member(path=path, kind="hardlink", mode=0, uid=0, gid=0, mtime=0,
                              linkname=draw(st.sampled_from(files)))  # fmt: skip
            elif kind == "symlink":
                made = entry(path, "symlink", mode=0o777, linkname=draw(st.sampled_from(NAMES)))
            elif kind == "dir":
                made = mkdir(path, draw(modes))
            else:
                made = entry(path, content=draw(tokens), mode=draw(modes))
            layer.append(made)
            written.add(path)
            tree = layerapply.apply(tree, [made])
        layers.append(layer)
    return base, layers


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_any_stack_squashes_to_the_same_view(
    stack: tuple[list[Member], list[list[Member]]],
) -> None:
    base, layers = stack
    check_same_view(base, layers)
