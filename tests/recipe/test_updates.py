"""The recipes' updates: key: its values, located errors for each bad one, and the
calendar check held against systemd's own parser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Updates
from nestcustom.recipe.rules_updates import is_calendar
from nestcustom.recipe.updates import seconds
from tests.conftest import BASE, WriteRecipe

HEAD = f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [strace]}}]\n"


@pytest.fixture(autouse=True)
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)  # errors name recipes/r.yaml


def updates_recipe(write_recipe: WriteRecipe, *lines: str) -> Path:
    return write_recipe(HEAD + "updates:\n" + "".join(f"  {line}\n" for line in lines))


def test_defaults_and_spans(write_recipe: WriteRecipe) -> None:
    path = updates_recipe(write_recipe, "ring: stable", "fleetlock: http://fl.example.com:8080/")
    assert load_recipe(path).recipe.updates == Updates(
        "stable", "http://fl.example.com:8080/", "default", "daily", 3600, 300, 600, None
    )
    path = updates_recipe(
        write_recipe,
        "ring: canary",
        "fleetlock: https://fl.example.com/",
        "group: workers.eu-1",
        "schedule: 'Mon..Fri 02:00'",
        "window: 1h 30min",
        "retry: 90",
        "health-timeout: 10m",
        "image: registry.example.com:5000/nestos/agent",
    )
    assert load_recipe(path).recipe.updates == Updates(
        "canary",
        "https://fl.example.com/",
        "workers.eu-1",
        "Mon..Fri 02:00",
        5400,
        90,
        600,
        "registry.example.com:5000/nestos/agent",
    )


def test_the_digest_changes_with_updates_and_not_without(write_recipe: WriteRecipe) -> None:
    plain = load_recipe(write_recipe(HEAD)).recipe.digest
    one = load_recipe(
        updates_recipe(write_recipe, "ring: stable", "fleetlock: http://fl.example.com/")
    ).recipe.digest
    other = load_recipe(
        updates_recipe(write_recipe, "ring: canary", "fleetlock: http://fl.example.com/")
    ).recipe.digest
    assert len({plain, one, other}) == 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "ring: Stable",
            "recipes/r.yaml:5:9: updates.ring: 'Stable' is not a ring name\n  hint: lower-case "
            "letters, digits and '-', starting with a letter or digit (it becomes the tag "
            "ring-NAME), e.g. canary or stable",
        ),
        (
            "fleetlock: ftp://fl.example.com/",
            "recipes/r.yaml:6:14: updates.fleetlock: 'ftp://fl.example.com/' is not an http:// "
            "or https:// URL",
        ),
        (
            "fleetlock: 'http://fl.example.com/$HOME'",
            "recipes/r.yaml:6:14: updates.fleetlock: 'http://fl.example.com/$HOME' is not an "
            "http:// or https:// URL",
        ),
        (
            "schedule: 'Mon..Fri 25'",
            "recipes/r.yaml:7:13: updates.schedule: 'Mon..Fri 25' is not a systemd calendar "
            "event\n  hint: as OnCalendar= takes it (systemd.time(7)), e.g. daily, `Mon..Fri "
            "02:00` or `*-*-* 03:30:00`; `systemd-analyze calendar 'EVENT'` shows when it fires",
        ),
        (
            "window: two hours",
            "recipes/r.yaml:7:11: updates.window: 'two hours' is not a duration\n  hint: a "
            "number and a unit, as systemd writes time spans: 90s, 10min, 2h, 1h 30min (a bare "
            "number is seconds)",
        ),
        (
            "health-timeout: 5 fortnights",
            "recipes/r.yaml:7:19: updates.health-timeout: '5 fortnights' is not a duration\n  "
            "hint: a number and a unit, as systemd writes time spans: 90s, 10min, 2h, 1h 30min "
            "(a bare number is seconds)",
        ),
        (
            "retry: 0s",
            "recipes/r.yaml:7:10: updates.retry: retry must be at least one second\n  hint: "
            "e.g. 5min",
        ),
        (
            "window: -5",
            "recipes/r.yaml:7:11: updates.window: -5 is not a duration\n  hint: a number and "
            "a unit, as systemd writes time spans: 90s, 10min, 2h, 1h 30min (a bare number is "
            "seconds)",
        ),
        (
            "group: 'a b'",
            "recipes/r.yaml:7:10: updates.group: 'a b' is not a FleetLock group (letters, "
            "digits, '.' and '-')",
        ),
    ],
)
def test_bad_values_are_located(write_recipe: WriteRecipe, line: str, expected: str) -> None:
    lines = ["ring: stable", "fleetlock: http://fl.example.com/"]
    key = line.split(":")[0]
    lines = [existing for existing in lines if not existing.startswith(key + ":")]
    lines.insert(0 if key == "ring" else len(lines), line)
    with pytest.raises(RecipeError) as caught:
        load_recipe(updates_recipe(write_recipe, *lines))
    assert [p.format() for p in caught.value.problems] == [expected]


def test_ring_and_fleetlock_are_required(write_recipe: WriteRecipe) -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe(updates_recipe(write_recipe, "ring: stable"))
    [problem] = caught.value.problems
    assert problem.format().startswith("recipes/r.yaml:5:3: updates:")
    assert "fleetlock" in problem.format()


@pytest.mark.parametrize(
    ("span", "expected"),
    [("90", 90), ("90s", 90), ("10min", 600), ("10m", 600), ("2h", 7200), ("1h 30min", 5400),
     ("2 hours", 7200), ("1.5h", 5400), ("1d", 86400), ("1w", 604800),
     ("", None), ("h", None), ("2 fortnights", None), ("-1s", None)],
)  # fmt: skip
def test_spans_read_as_systemd_reads_them(span: str, expected: int | None) -> None:
    assert seconds(span) == expected


CALENDARS = [
    ("daily", True), ("weekly", True), ("Mon..Fri 02:00", True), ("Mon,Wed,Fri 03:30", True),
    ("*-*-* 03:30:00", True), ("Sat *-*-1..7 18:00:00", True), ("*:0/15", True),
    ("2026-03-05 05:40", True), ("Mon..Fri 02:00 UTC", True), ("*-02~03 00:00", True),
    ("Mon..Fri 25", False), ("daily 02:00", False), ("every day", False), ("", False),
    ("02:00 Mon", False), ("Mon..Fri\n[Service]", False),
]  # fmt: skip


@pytest.mark.parametrize(("text", "valid"), CALENDARS)
def test_the_calendar_check_agrees_with_systemd(text: str, valid: bool) -> None:
    assert is_calendar(text) is valid
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here to hold the check against")
    if "\n" in text:
        return  # one argument to systemd-analyze; a unit file never gets such a value
    done = subprocess.run(
        ["systemd-analyze", "calendar", text], capture_output=True, text=True, check=False
    )
    assert (done.returncode == 0) is valid, done.stderr


COSIGN = (
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
)


@pytest.mark.parametrize(("default", "warned"), [("accept", True), ("reject", False)])
def test_a_sigstore_scope_the_updater_cannot_prove_is_named(
    project: Path, write_recipe: WriteRecipe, default: str, warned: bool
) -> None:
    (project / "files").mkdir(exist_ok=True)
    (project / "files" / "cosign.pub").write_text(COSIGN)
    path = write_recipe(
        HEAD
        + "updates: {ring: stable, fleetlock: 'http://fl.example.com/'}\n"
        + f"signing:\n  default: {default}\n  scopes:\n"
        + "    - {scope: reg.example.com/x, key: files/cosign.pub, type: sigstore}\n"
    )
    found = [w.format() for w in load_recipe(path).warnings if w.code == "updates-sigstore"]
    expected = (
        "recipes/r.yaml:8:63: signing.scopes[0].type: warning: the updater cannot prove sigstore "
        "signatures of reg.example.com/x under `default: accept`: hosts stage no image of that scope"
    )
    assert [f.splitlines()[0] for f in found] == ([expected] if warned else [])


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [
        ("^production$", None),
        ("^v[0-9]+\\.[0-9]+ (ok|fine)$", None),
        ("a{2,3}b?c*", None),
        ("22\\.\\d+", "\\d"),  # grep -E reads \d as d (or warns): the host would judge wrong
        ("(?i)ready", "(?"),
        ("start.*?end", "*?"),
        ("\\bword\\b", "\\b"),
        ("^[[:digit:]]+$", "[:digit:]"),  # Python reads a set of : d i g t
        ("C:\\\\data", None),  # an escaped backslash, then d: both read it alike
    ],
)
def test_with_updates_a_stdout_pattern_must_read_alike_in_grep_and_python(
    write_recipe: WriteRecipe, pattern: str, refused: str | None
) -> None:
    path = write_recipe(
        HEAD
        + "updates: {ring: stable, fleetlock: 'http://fl.example.com/'}\n"
        + "tests:\n  commands:\n    - run: [cat, /etc/mode]\n"
        + f"      stdout: {json.dumps(pattern)}\n"
    )
    if refused is None:
        load_recipe(path)
        return
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    (problem,) = caught.value.problems
    assert problem.code == "updates-pattern"
    assert problem.format().startswith(
        f"recipes/r.yaml:8:15: tests.commands[0].stdout: `{refused}` in `{pattern}` is not an "
        "extended regular expression"
    )
    assert "[0-9] for \\d" in problem.format()
    # without updates: only `nestcustom test` (Python's re) reads it: accepted
    without = "".join(line for line in path.read_text().splitlines(True) if "updates:" not in line)
    load_recipe(write_recipe(without))
