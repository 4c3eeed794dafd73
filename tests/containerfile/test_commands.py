"""The commands a layer's RUN executes and how its line is written, called directly: the argv
each program gets and the text of the RUN line."""

from __future__ import annotations

import pytest

from nestcustom.containerfile.commands import (
    HELPER,
    MAX_LINE,
    Command,
    dnf_package_commands,
    nestos_package_commands,
    run_line,
    stage_package_commands,
)
from nestcustom.recipe.model import Layer, Swap


def argvs(commands: list[Command]) -> list[list[str]]:
    return [list(c.argv) for c in commands]


def test_newstart_swaps_one_for_one_and_n_for_m_in_a_stable_order() -> None:
    # Written in another order than they run: the output sorts by what is removed.
    layer = Layer(
        "s",
        swap=(
            Swap(("nano",), ("vim", "vim-common")),
            Swap(("b",), ("b2",)),
            Swap(("a",), ("a2",)),
            Swap(("c", "d"), ("e",)),
        ),
    )
    assert argvs(dnf_package_commands(layer)) == [
        ["dnf", "-y", "swap", "a", "a2"],
        ["dnf", "-y", "swap", "b", "b2"],
        ["dnf", "-y", "--allowerasing", "install", "e"],
        ["dnf", "-y", "remove", "c", "d"],
        ["dnf", "-y", "--allowerasing", "install", "vim", "vim-common"],
        ["dnf", "-y", "remove", "nano"],
    ]


def test_newstart_replaces_with_rpm_files_allowing_erasure() -> None:
    urls = ("https://r.example.com/b-2-1.x86_64.rpm", "https://r.example.com/a-2-1.x86_64.rpm")
    layer = Layer("r", replace=urls, install=("x",))
    assert argvs(dnf_package_commands(layer)) == [
        ["dnf", "-y", "--allowerasing", "install", *sorted(urls)],
        ["dnf", "-y", "install", "x"],
    ]


@pytest.mark.parametrize(
    ("manager", "commands"),
    [
        ("dnf", [["dnf", "-y", "install", "gcc", "make"], ["dnf", "clean", "all"]]),
        ("yum", [["yum", "-y", "install", "gcc", "make"], ["yum", "clean", "all"]]),
        ("microdnf", [["microdnf", "-y", "install", "gcc", "make"], ["microdnf", "clean", "all"]]),
        (
            "apt-get",
            [
                ["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", "gcc", "make"],
                ["apt-get", "clean"],
            ],
        ),
        ("rpm-ostree", [["rpm-ostree", "install", "gcc", "make"]]),
    ],
)
def test_a_builder_stage_installs_with_its_package_manager(
    manager: str, commands: list[list[str]]
) -> None:
    layer = Layer("build", install=("make", "gcc", "make"))
    assert argvs(stage_package_commands(layer, manager)) == commands
    assert stage_package_commands(Layer("build", run=(("make",),)), manager) == []


def test_a_name_with_capitals_is_not_a_glob() -> None:
    layer = Layer("slim", remove=("libX11", "kernel-devel*", "font[s]", "a?"))
    assert argvs(nestos_package_commands(layer)) == [
        ["rpm-ostree", "override", "remove", "libX11"],
        ["sh", HELPER, "remove-matching", "a?", "font[s]", "kernel-devel*"],
    ]


def test_mounts_lead_a_run_that_fits_on_one_line() -> None:
    assert run_line([Command(("true",)), Command(("id",))], ["--mount=a", "--mount=b"]) == (
        "RUN --mount=a --mount=b true && id"
    )


@pytest.mark.parametrize(("width", "one_line"), [(MAX_LINE, True), (MAX_LINE + 1, False)])
def test_a_command_wraps_its_arguments_only_past_100_columns(width: int, one_line: bool) -> None:
    # Two commands that do not fit on one line together: each takes a line of its own,
    # and only the one wider than 100 columns puts each argument on a line.
    first = Command(("rpm-ostree", "install"), ("p" * (width - len("RUN rpm-ostree install ")),))
    text = run_line([first, Command(("ostree", "container", "commit"))])
    lines = text.split(" \\\n")
    if one_line:
        assert lines == [f"RUN {' '.join(first.argv)}", "    && ostree container commit"]
        assert len(lines[0]) == MAX_LINE
    else:
        assert lines == [
            "RUN rpm-ostree install",
            f"        {first.args[0]}",
            "    && ostree container commit",
        ]
