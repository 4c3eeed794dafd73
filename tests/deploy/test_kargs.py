"""Kernel arguments a rollout applies: the label, bootc's kargs.d files, and the plan that
takes a staged deployment's arguments to what the image asks for (pure functions)."""

from __future__ import annotations

import pytest

from nestcustom.deploy.kargs import (
    ImageKargs,
    comparable,
    kargsd_appends,
    parse_label,
    plan,
    problems,
    toml_kargs,
)
from nestcustom.errors import BadInputError
from tests.universe.fleet.emulator.kargs_host import patch

STAGED = [
    "mitigations=auto,nosmt",
    "console=tty0",
    "ostree=/ostree/boot.1/nestos/abc/0",
    "rw",
    "quiet",
]


def test_the_label_nestcustom_writes_is_read_back() -> None:
    text = (
        '{"append":["nosmt"],"delete":["quiet"],"replace":["a=1"],"match-architectures":["x86_64"]}'
    )
    assert parse_label(text) == ImageKargs(("nosmt",), ("quiet",), ("a=1",), ("x86_64",))
    assert parse_label(None) is None


@pytest.mark.parametrize(
    "text", ["{", '{"append": "nosmt"}', '{"append": [1]}', "[]", '{"delete": ["a b"]}']
)
def test_a_label_not_written_by_nestcustom_is_refused(text: str) -> None:
    with pytest.raises(BadInputError) as caught:
        parse_label(text)
    assert "io.nestcustom.kernel-arguments label" in caught.value.message


def test_match_architectures_narrow_to_nothing_on_other_hosts() -> None:
    kargs = ImageKargs(("nosmt",), match_architectures=("aarch64",))
    assert kargs.for_arch("x86_64") == ImageKargs()
    assert kargs.for_arch("aarch64") == kargs


def test_kargsd_files_as_bootc_reads_them() -> None:
    """Sorted by name, only *.toml, a file for another architecture skipped (kargs.rs)."""
    files = (
        ("20-b.toml", 'kargs = ["b=2"] # trailing\nmatch-architectures = ["aarch64"]\n'),
        ("10-a.toml", "# comment\nkargs = [\n  \"a\",\n  'c=x y',\n]\n"),
        ("README", "not read"),
    )
    assert kargsd_appends(files, "x86_64") == ("a", "c=x y")
    assert kargsd_appends(files, "aarch64") == ("a", "c=x y", "b=2")
    assert toml_kargs('kargs = ["q\\"uote"]') == (['q"uote'], None)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('kargs = ["a"]\nfoo = ["b"]\n', "bootc reads kargs"),
        ('match-architectures = ["x86_64"]\n', "bootc reads kargs"),
        ("kargs = [1]\n", "only strings may be listed"),
        ('kargs = ["a"\n', "not TOML"),
        ('kargs = "a"\n', "kargs: only strings may be listed, not 'a'"),
        ('kargs = ["a"]\nmatch-architectures = "x86_64"\n', "match-architectures: only strings"),
    ],
)
def test_a_kargsd_file_bootc_would_refuse_is_refused_by_name(text: str, why: str) -> None:
    with pytest.raises(BadInputError) as caught:
        kargsd_appends((("50-x.toml", text),), "x86_64")
    assert "/usr/lib/bootc/kargs.d/50-x.toml on the host" in caught.value.message
    assert why in caught.value.message


def test_the_first_image_with_arguments_appends_deletes_and_replaces() -> None:
    image = ImageKargs(("nosmt", "console=ttyS0"), ("quiet",), ("mitigations=off",))
    result = plan(image, (), STAGED)
    assert result.options == (
        "--replace=mitigations=auto,nosmt=off",
        "--delete-if-present=quiet",
        "--append-if-missing=nosmt",
        "--append-if-missing=console=ttyS0",
    )
    assert applied(STAGED, result.options) == [
        "mitigations=off",
        "console=tty0",
        "ostree=/ostree/boot.1/nestos/abc/0",
        "rw",
        "nosmt",
        "console=ttyS0",
    ]
    assert result.present == ("nosmt", "console=ttyS0", "mitigations=off")
    assert result.absent == ("quiet",)
    after = "BOOT_IMAGE=/x mitigations=off console=tty0 ostree=/o rw nosmt console=ttyS0"
    assert problems(result, after) == []
    assert problems(result, " ".join(STAGED)) == [
        "nosmt is missing",
        "console=ttyS0 is missing",
        "mitigations=off is missing",
        "quiet is still there",
    ]


def test_what_the_booted_image_appended_and_this_one_does_not_is_removed() -> None:
    """bootc's rule: added = new - old, removed = old - new; the rest is left alone, even
    an argument both append that someone removed by hand."""
    staged = [*STAGED, "a=1", "b"]
    result = plan(ImageKargs(("b", "c")), ("a=1", "b", "gone"), staged)
    assert result.options == ("--delete-if-present=a=1", "--append-if-missing=c")
    assert result.absent == ("a=1", "gone")
    assert plan(ImageKargs(("b",)), ("b",), STAGED).options == ()  # b was removed by hand


def test_nothing_to_do_when_the_host_already_has_them() -> None:
    result = plan(ImageKargs(("rw",), ("absent",), ("console=tty0",)), (), STAGED)
    assert result.options == ()
    assert result.summary() == "+rw +console=tty0 -absent"


def test_a_replace_of_a_key_given_twice_leaves_one_value() -> None:
    staged = ["console=tty0", "x", "console=ttyS0"]
    result = plan(ImageKargs(replace=("console=hvc0",)), (), staged)
    assert result.options == ("--replace=console=tty0=hvc0", "--delete-if-present=console=ttyS0")
    assert applied(staged, result.options) == ["console=hvc0", "x"]


def test_key_old_new_replaces_that_one_value_as_rpm_ostree_reads_it() -> None:
    staged = ["console=tty0", "console=ttyS0,115200n8"]
    result = plan(ImageKargs(replace=("console=ttyS0,115200n8=ttyS0,9600",)), (), staged)
    assert result.options == ("--replace=console=ttyS0,115200n8=ttyS0,9600",)
    assert applied(staged, result.options) == ["console=tty0", "console=ttyS0,9600"]
    assert (result.present, result.absent) == (("console=ttyS0,9600",), ("console=ttyS0,115200n8",))


def test_comparable_leaves_out_what_each_deployment_sets() -> None:
    assert comparable("BOOT_IMAGE=(hd0)/vmlinuz ostree=/ostree/boot.0/x rw quiet") == [
        "rw",
        "quiet",
    ]


def applied(staged: list[str], options: tuple[str, ...]) -> list[str]:
    """The arguments after `rpm-ostree kargs OPTIONS`, as the contract's emulator patches
    them (libostree's list, rpm-ostree's order of operations)."""
    opts: dict[str, list[str]] = {}
    for option in options:
        name, _, value = option.partition("=")
        opts.setdefault(name, []).append(value)
    return patch(staged, opts)[0]


@pytest.mark.parametrize(
    ("staged", "replace", "after"),
    [
        # the main console is the last one: a replace must not reorder them
        (["console=ttyS0,115200n8", "console=tty0"], "console=ttyS0,115200n8=hvc0",
         ["console=hvc0", "console=tty0"]),
        (["mitigations=auto,nosmt", "quiet"], "mitigations=off", ["mitigations=off", "quiet"]),
        # a bare key or an old value with '=' cannot be replaced in place: delete, append
        (["quiet", "rw"], "quiet=1", ["rw", "quiet=1"]),
        (["opt=a=b", "rw"], "opt=c", ["rw", "opt=c"]),
        # the new value is already there: the other value goes
        (["console=tty0", "console=hvc0"], "console=hvc0", ["console=hvc0"]),
    ],
)  # fmt: skip
def test_a_replace_keeps_the_arguments_order_where_rpm_ostree_can(
    staged: list[str], replace: str, after: list[str]
) -> None:
    result = plan(ImageKargs(replace=(replace,)), (), staged)
    assert applied(staged, result.options) == after
    assert problems(result, " ".join(after)) == []
