"""What a person watching a build or a rollout sees: the live tables and the plain lines."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from nestcustom.cli.progress import HostProgress, LiveProgress, PlainProgress
from nestcustom.image.events import BuildEvent

TIME = r"\s*\d+\.\ds"


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False, color_system=None), out


def rows(text: str) -> list[list[str]]:
    """The table's lines split into cells (two or more blanks between cells)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def rendered(progress: LiveProgress | HostProgress) -> list[list[str]]:
    shown, out = console()
    shown.print(progress._table())
    return rows(out.getvalue())


def test_plain_progress_prints_steps_lines_and_the_end_of_each_recipe() -> None:
    out = io.StringIO()
    plain = PlainProgress(out)
    with plain:
        plain.event("agent", BuildEvent(1, 3, "FROM base", starts_step=True))
        plain.event("agent", BuildEvent(1, 3, "pulling"))
        plain.finished("agent", ok=True)
        plain.finished("tools", ok=False)
        plain.finished("debug", ok=True, up_to_date=True)
    assert out.getvalue().splitlines() == [
        "agent | STEP 1/3: FROM base",
        "agent |   pulling",
        "agent | done",
        "tools | FAILED",
        "debug | up to date",
    ]


def test_plain_progress_without_verbose_prints_only_steps() -> None:
    out = io.StringIO()
    plain = PlainProgress(out, verbose=False)
    plain.event("agent", BuildEvent(2, 3, "RUN install", starts_step=True))
    plain.event("agent", BuildEvent(2, 3, "Installing strace"))
    assert out.getvalue() == "agent | STEP 2/3: RUN install\n"


def test_live_table_shows_each_recipes_step_what_and_latest_line() -> None:
    shown, _ = console()
    live = LiveProgress(["agent", "tools"], console=shown)
    assert [r[:3] for r in rendered(live)] == [
        ["recipe", "step", "what", "time", "latest"][:3],
        ["agent", "-", "waiting"],
        ["tools", "-", "waiting"],
    ]
    live.event("agent", BuildEvent(2, 5, "RUN " + "x" * 60, starts_step=True))
    live.event("agent", BuildEvent(2, 5, "  Installing strace  "))
    live.event("agent", BuildEvent(2, 5, "   "))  # a blank line keeps the latest one
    agent = rendered(live)[1]
    assert agent[:3] == ["agent", "2/5", "RUN " + "x" * 36]  # what: its first 40 characters
    assert re.fullmatch(TIME, agent[3])
    assert agent[4] == "Installing strace"
    live.event("agent", BuildEvent(3, 5, "COPY files", starts_step=True))
    assert rendered(live)[1][:3] == ["agent", "3/5", "COPY files"]
    assert len(rendered(live)[1]) == 4  # a new step clears the latest line


def test_live_table_keeps_the_end_of_a_long_line_and_adds_unknown_recipes() -> None:
    shown, _ = console()
    live = LiveProgress(["agent"], console=shown)
    live.event("late", BuildEvent(1, 1, "start", starts_step=True))
    live.event("late", BuildEvent(1, 1, "a" * 50 + "b" * 70))
    late = rendered(live)[2]
    assert late[0] == "late" and late[-1] == "b" * 70


@pytest.mark.parametrize(
    ("ok", "up_to_date", "state"),
    [(True, False, "done"), (False, False, "FAILED"), (True, True, "up to date")],
)
def test_live_table_says_how_each_recipe_ended(ok: bool, up_to_date: bool, state: str) -> None:
    shown, out = console()
    with LiveProgress(["agent"], console=shown) as live:
        live.event("agent", BuildEvent(1, 2, "FROM base", starts_step=True))
        live.finished("agent", ok, up_to_date)
    assert rendered(live)[1][:3] == ["agent", "1/2", state]
    # The last table stays on the terminal (not transient): the run's outcome is kept.
    assert rows(out.getvalue())[-1][:3] == ["agent", "1/2", state]


def test_live_table_colours_the_outcome() -> None:
    out = io.StringIO()
    shown = Console(file=out, width=120, force_terminal=True, color_system="standard")
    live = LiveProgress(["ok", "bad"], console=shown)
    live.finished("ok", True)
    live.finished("bad", False)
    shown.print(live._table())
    lines = {line.split()[0].split("m")[-1]: line for line in out.getvalue().splitlines()[1:]}
    assert "\x1b[32m" in lines["ok"] and "\x1b[31m" in lines["bad"]  # green, red


def test_host_progress_without_a_terminal_prints_a_line_per_step(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with HostProgress(["h1", "h2"], live=False) as progress:
        progress.event("h1", "preflight", "start")
        progress.event("h1", "preflight", "ok")
        progress.event("h2", "rebase", "error")
    assert capsys.readouterr().err.splitlines() == [
        "h1 | preflight start",
        "h1 | preflight ok",
        "h2 | rebase error",
    ]
    table = rendered(progress)
    assert table[0] == ["host", "step", "state", "time"]
    assert [r[:3] for r in table[1:]] == [["h1", "preflight", "ok"], ["h2", "rebase", "error"]]


def test_host_progress_table_starts_each_hosts_clock_at_its_first_step() -> None:
    progress = HostProgress(["h1", "h2"], live=False)
    assert [r[:2] for r in rendered(progress)[1:]] == [["h1", "waiting"], ["h2", "waiting"]]
    progress.states["h1"] = ("waiting", "", 0.0)  # waiting since the epoch of the clock
    progress.event("h1", "preflight", "start")
    assert float(rendered(progress)[1][3].rstrip("s")) < 60  # the clock restarted
    progress.states["h2"] = ("preflight", "ok", 0.0)
    progress.event("h2", "rebase", "start")  # not a first step: the clock runs on
    assert float(rendered(progress)[2][3].rstrip("s")) > 60


def test_host_progress_colours_how_each_host_ended_in_bold_columns() -> None:
    out = io.StringIO()
    shown = Console(file=out, width=120, force_terminal=True, color_system="standard")
    progress = HostProgress(["up", "same", "staged", "bad", "busy", "new"], live=False)
    for host, step in (("up", "updated"), ("same", "unchanged"), ("staged", "staged")):
        progress.states[host] = (step, "", time.monotonic())
    progress.states["bad"] = ("failed", "rebase", time.monotonic())
    progress.states["busy"] = ("reboot", "start", time.monotonic())
    shown.print(progress._table())
    header, *lines = out.getvalue().splitlines()
    assert "\x1b[1m" in header  # the column titles in bold
    by_host = {re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0]: line for line in lines}
    assert all("\x1b[32m" in by_host[h] for h in ("up", "same", "staged"))  # green
    assert "\x1b[31m" in by_host["bad"]  # red
    assert "\x1b[3" not in by_host["busy"] and "\x1b[3" not in by_host["new"]  # no colour
    # A host not yet started shows no state, only how long it has been waiting.
    assert rows(re.sub(r"\x1b\[[0-9;]*m", "", by_host["new"]))[0][1:3] == ["waiting", "0.0s"]


def test_host_progress_keeps_each_host_on_one_line_in_a_narrow_terminal() -> None:
    """A live table redraws in place: a row that wrapped would push the others around."""
    out = io.StringIO()
    progress = HostProgress(["host-" + "x" * 60 + ".example.com", "h2"], live=False)
    Console(file=out, width=40, color_system=None).print(progress._table())
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[1].startswith("host-xxx") and lines[2].startswith("h2")


def test_live_table_cuts_a_long_cell_with_an_ellipsis_in_a_narrow_terminal() -> None:
    """One line a recipe, its cut cells marked, so a reader knows there is more."""
    shown, _ = console()
    live = LiveProgress(["agent-" + "x" * 60, "tools"], console=shown)
    live.event("tools", BuildEvent(1, 2, "RUN " + "y" * 36, starts_step=True))
    live.event("tools", BuildEvent(1, 2, "z" * 70))
    out = io.StringIO()
    Console(file=out, width=60, color_system=None).print(live._table())
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[1].startswith("agent-xxx") and lines[2].startswith("tools")
    assert all("…" in line for line in lines[1:]), lines
