"""The chunk plan: the chunks, applied in order over the base, show what the recipe's layers
showed; one package's change moves one chunk and the state; limits are kept or refused."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestcustom.image.rechunk.model import CustomDiff, Member, Payload, ancestors, path_key
from nestcustom.image.rechunk.plan import Chunk, Limits, Plan, PlanError, plan
from nestcustom.image.rechunk.squash import squash
from tests.image import layerapply
from tests.image.test_rechunk_squash import entry, gone, index_of, mkdir, stacks

BASE = [mkdir("usr"), mkdir("usr/bin"), mkdir("usr/lib"), mkdir("etc"), entry("etc/motd"),
        mkdir("usr/share"), mkdir("usr/share/rpm"), entry("usr/share/rpm/rpmdb.sqlite", content="db0")]  # fmt: skip


def package(name: str, size: int = 100, files: int = 2) -> list[Member]:
    return [
        mkdir(f"usr/lib/{name}"),
        *(
            entry(f"usr/lib/{name}/f{i}", content=f"{name}{i}", payload=Payload(0, size))
            for i in range(files)
        ),
        entry(f"usr/bin/{name}", content=f"{name}-bin"),
    ]


def layer_of(*names: str, db: str = "db1") -> list[Member]:
    members = [mkdir("usr/bin"), mkdir("usr/lib"), mkdir("usr/share/rpm")]
    for name in names:
        members += package(name)
    return [*members, entry("usr/share/rpm/rpmdb.sqlite", content=db)]


def owners_of(diff: CustomDiff) -> dict[str, str]:
    """Files under usr/lib/NAME and usr/bin/NAME belong to NAME.x86_64."""
    found = {}
    for m in diff.entries:
        parts = m.path.split("/")
        if parts[:2] in (["usr", "lib"], ["usr", "bin"]) and len(parts) > 2:
            found[m.path] = f"{parts[2]}.x86_64"
    return found


def chunked(diff: CustomDiff, limits: Limits | None = None) -> Plan:
    return plan(diff, owners_of(diff), limits or Limits())


def by_name(result: Plan) -> dict[str, Chunk]:
    return {c.name: c for c in result.chunks}


def test_each_package_has_its_chunk_between_deletions_and_state() -> None:
    diff = squash([layer_of("hello", "jq"), [gone("etc/motd")]], index_of(BASE))
    result = chunked(diff)
    assert [c.name for c in result.chunks] == ["deletions", "hello.x86_64", "jq.x86_64", "state"]
    assert [m.path for m in by_name(result)["hello.x86_64"].members] == [
        "usr/bin", "usr/bin/hello", "usr/lib", "usr/lib/hello", "usr/lib/hello/f0", "usr/lib/hello/f1",
    ]  # fmt: skip
    assert [m.path for m in by_name(result)["state"].members] == [
        "usr/share/rpm", "usr/share/rpm/rpmdb.sqlite",
    ]  # fmt: skip


def test_a_package_added_changes_only_its_chunk_and_the_state() -> None:
    before = chunked(squash([layer_of("hello", "jq", "strace")], index_of(BASE)))
    after = chunked(squash([layer_of("hello", "jq", "strace", "optapp", db="db2")], index_of(BASE)))
    old, new = by_name(before), by_name(after)
    assert set(new) - set(old) == {"optapp.x86_64"}
    assert [n for n in old if old[n] != new[n]] == ["state"]


def test_past_the_room_small_packages_share_hash_buckets_that_one_change_moves_once() -> None:
    names = [f"p{i:02d}" for i in range(30)]
    limits = Limits(max_layers=12, small_buckets=4, file_groups=4)
    before = chunked(squash([layer_of(*names)], index_of(BASE)), limits)
    assert len(before.chunks) <= 12
    kinds = [c.kind for c in before.chunks]
    assert kinds.count("package") == 12 - 1 - 4 and 1 <= kinds.count("bucket") <= 4
    changed = [m if m.path != "usr/lib/p17/f0" else entry(m.path, content="new", payload=Payload(0, 100))
               for m in layer_of(*names, db="db2")]  # fmt: skip
    after = chunked(squash([changed], index_of(BASE)), limits)
    differ = [a.name for a, b in zip(before.chunks, after.chunks, strict=True) if a != b]
    assert len(differ) == 2 and differ[-1] == "state"
    assert "p17.x86_64" in (
        differ[0].split(": ")[-1].split() if differ[0].startswith("small") else [differ[0]]
    )


def test_sizes_within_one_power_of_two_do_not_reorder_who_gets_a_chunk() -> None:
    names = [f"p{i:02d}" for i in range(20)]
    limits = Limits(max_layers=10)
    base_layer = layer_of(*names)
    grown = [entry(m.path, content=m.sha256, payload=Payload(0, 110)) if m.path.startswith("usr/lib/p19/") and m.kind == "file"
             else m for m in base_layer]  # fmt: skip
    own = [{c.name for c in chunked(squash([layer], index_of(BASE)), limits).chunks if c.kind == "package"}
           for layer in (base_layer, grown)]  # fmt: skip
    assert own[0] == own[1]


def test_unpackaged_files_share_a_few_groups_by_their_first_two_directories() -> None:
    layers = [
        [mkdir("etc"), entry("etc/app.conf"), mkdir("etc/systemd"), entry("etc/systemd/x.service"),
         mkdir("usr/local"), entry("usr/local/agent"), mkdir("usr/libexec"), entry("usr/libexec/y")]
    ]  # fmt: skip
    result = chunked(squash(layers, index_of(BASE)))
    assert [(c.name, [m.path for m in c.members if m.kind != "dir"]) for c in result.chunks] == [
        ("files 1: /usr/local", ["usr/local/agent"]),
        ("files 2: /etc /etc/systemd", ["etc/app.conf", "etc/systemd/x.service"]),
        ("files 3: /usr/libexec", ["usr/libexec/y"]),
    ]
    one = chunked(squash(layers, index_of(BASE)), Limits(file_groups=1))
    assert [c.name for c in one.chunks] == ["files 0: /etc /etc/systemd /usr/libexec /usr/local"]


def test_a_directory_named_with_bytes_that_are_not_utf8_is_grouped_like_any_other() -> None:
    odd = b"etc/caf\xe9".decode("utf-8", "surrogateescape")  # as the readers carry it
    layers = [[mkdir("etc"), mkdir(odd), entry(f"{odd}/menu")]]
    (chunk,) = chunked(squash(layers, index_of(BASE))).chunks
    assert chunk.name.startswith("files ") and f"{odd}/menu" in [m.path for m in chunk.members]


def test_a_file_two_steps_wrote_is_state() -> None:
    layers = [
        [mkdir("etc"), entry("etc/hwdb.bin", content="1")],
        [mkdir("etc"), entry("etc/hwdb.bin", content="2")],
    ]
    assert [c.name for c in chunked(squash(layers, index_of(BASE))).chunks] == ["state"]


def test_names_of_one_file_stay_in_one_chunk() -> None:
    link = Member(
        path="usr/bin/aa-link",
        kind="hardlink",
        mode=0,
        uid=0,
        gid=0,
        mtime=0,
        linkname="usr/bin/hello",
    )
    result = chunked(squash([[*layer_of("hello"), link]], index_of(BASE)))
    holding = [
        [m.path for m in c.members if m.path in ("usr/bin/aa-link", "usr/bin/hello")]
        for c in result.chunks
    ]
    assert [h for h in holding if h] == [["usr/bin/aa-link", "usr/bin/hello"]]


def test_limits_too_small_for_a_package_of_its_own_are_refused_with_the_count() -> None:
    names = [f"p{i}" for i in range(10)]
    with pytest.raises(PlanError, match=r"max-layers 5 leaves no layer .* 1 layers hold .* 4 hold"):
        chunked(squash([layer_of(*names)], index_of(BASE)), Limits(max_layers=5))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), st.integers(0, 2**32), st.integers(4, 9))
def test_the_chunks_in_order_show_what_the_stack_showed(
    stack: tuple[list[Member], list[list[Member]]], seed: int, max_layers: int
) -> None:
    base, layers = stack
    diff = squash(layers, index_of(base))
    chooser = random.Random(seed)
    owners = {m.path: chooser.choice(["a.x86_64", "b.x86_64", "c.noarch", "d.noarch"])
              for m in diff.entries if chooser.random() < 0.6}  # fmt: skip
    result = plan(diff, owners, Limits(max_layers=max_layers, small_buckets=2))
    assert len(result.chunks) <= max_layers
    start = layerapply.apply({}, base)
    want = layerapply.apply_all(start, layers)
    assert layerapply.view(
        layerapply.apply_all(start, [c.members for c in result.chunks])
    ) == layerapply.view(want)
    for chunk in result.chunks:
        paths = [m.path for m in chunk.members]
        assert paths == sorted(paths, key=path_key)
        kept = {m.path for m in chunk.members}
        assert all(
            a in kept for p in kept for a in ancestors(p) if a in {e.path for e in diff.entries}
        )


def test_past_the_room_the_largest_packages_keep_chunks_of_their_own() -> None:
    names = [f"p{i:02d}" for i in range(20)]
    layer = [entry(m.path, content=m.sha256, payload=Payload(0, 10**6)) if m.path.startswith("usr/lib/p19/") and m.kind == "file"
             else m for m in layer_of(*names)]  # fmt: skip
    result = chunked(squash([layer], index_of(BASE)), Limits(max_layers=8, small_buckets=2))
    own = [c.name for c in result.chunks if c.kind == "package"]
    assert own[-1] == "p19.x86_64" and len(own) == 8 - 1 - 2


def test_what_hosts_keep_outside_usr_and_etc_is_state() -> None:
    layers = [
        [mkdir("var"), mkdir("var/lib"), entry("var/lib/app.db"), mkdir("opt"), entry("opt/tool")]
    ]
    result = chunked(squash(layers, index_of(BASE)))
    assert [(c.name, [m.path for m in c.members]) for c in result.chunks] == [
        ("state", ["opt", "opt/tool", "var", "var/lib", "var/lib/app.db"])
    ]
