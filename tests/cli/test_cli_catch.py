"""What the command line says in the places the mutation run found unwatched: a progress
line of `base from-iso`, `fleetlock serve --group` specs, `render -o` outside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.base.pipeline import Event
from nestcustom.cli.base import _Progress
from tests.cli.test_cli import GOOD, run
from tests.conftest import BASE, WriteRecipe


def test_a_phase_without_a_count_is_one_line_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    progress = _Progress()
    progress(Event("resolve", "412 packages from 2 repositories"))
    progress(Event("install", "bash", 1, 100))
    progress(Event("install", "rpm", 5, 100))  # the same tenth: not shown again
    progress(Event("install", "zlib", 20, 100))
    assert capsys.readouterr().err.splitlines() == [
        "resolve   412 packages from 2 repositories",
        "install   1/100 bash",
        "install   20/100 zlib",
    ]


@pytest.mark.parametrize("spec", ["a b=2", "workers=two", "workers", "workers=0", "=2"])
def test_serve_refuses_a_group_that_is_not_group_equals_slots(spec: str, tmp_path: Path) -> None:
    """Refused before etcd is asked anything (none answers here)."""
    done = run("fleetlock", "serve", "--etcd", "http://127.0.0.1:9/", "--group", spec, cwd=tmp_path)
    assert done.returncode == 2
    assert f"--group {spec!r} is not GROUP=SLOTS" in done.stderr
    assert "for example --group default=2 (at least 1 slot)" in done.stderr


def test_serve_takes_a_group_with_capitals_dots_and_dashes(tmp_path: Path) -> None:
    """A well-formed group passes the check and the server goes on to etcd (down here)."""
    done = run(
        "fleetlock", "serve", "--etcd", "http://127.0.0.1:9/", "--group", "Workers.EU-1=3",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert "GROUP=SLOTS" not in done.stderr
    assert "etcd" in done.stderr


def test_render_refuses_to_write_outside_the_project_and_says_why(
    write_recipe: WriteRecipe, project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    write_recipe(GOOD)
    outside = tmp_path_factory.mktemp("elsewhere") / "Containerfile"
    done = run("render", "recipes/r.yaml", "-o", outside, cwd=project)
    assert done.returncode != 0
    assert f"{outside}: outside the project directory" in done.stderr
    assert "the project is the build context: write the Containerfile inside it" in done.stderr
    assert not outside.exists()


def test_deploy_reads_the_health_recipe_in_the_project_given(tmp_path: Path) -> None:
    """`--project` says where a `--recipe`'s files are, as for every other command: the
    recipe is read before any host or registry is asked (a closed port answers here)."""
    project = tmp_path / "project"
    (project / "files").mkdir(parents=True)
    (project / "files" / "motd").write_text("hello\n")
    (project / "health").mkdir()
    recipe = project / "health" / "r.yaml"  # not under recipes/: its own directory is no project
    recipe.write_text(
        f"name: r\nbase: {{image: {BASE}}}\nfiles: [{{src: files/motd, dest: /etc/motd}}]\n"
        "tests: {commands: [{run: [cat, /etc/motd], stdout: hello}]}\n"
    )
    (tmp_path / "hosts.yaml").write_text("hosts:\n  - {name: h1, address: 127.0.0.1, port: 9}\n")
    image = "127.0.0.1:9/nestos/x@sha256:" + "a" * 64
    argv = ("deploy", "-i", "hosts.yaml", image, "--recipe", recipe, "--dry-run")
    without = run(*argv, cwd=tmp_path)
    assert without.returncode == 2 and "'files/motd' is not a file" in without.stderr
    given = run("--project", project, *argv, cwd=tmp_path)
    assert "files/motd" not in given.stderr  # the recipe was read; the host is what fails
    assert given.returncode == 1, given.stderr


def test_build_signs_with_the_passphrase_file_given(
    write_recipe: WriteRecipe, project: Path
) -> None:
    """The key is unlocked with --sign-passphrase-file before anything is built: with it,
    the run gets as far as the base image (unreachable here); without it, it stops at
    the key and says how to give the passphrase."""
    (project / "pass").write_text("correct horse\n")
    made = run("keys", "generate", "k", "--passphrase-file", "pass", cwd=project)
    assert made.returncode == 0, made.stderr
    write_recipe(GOOD.replace(BASE, "127.0.0.1:9/nestos/base:1"))
    sign = ("--sign", "k/signing-key.asc", "--signature-store", f"file://{project / 'sigs'}")
    argv = ("build", "recipes/r.yaml", "--tag", "127.0.0.1:9/nc/r:1", "--push", *sign)
    locked = run(*argv, cwd=project)
    assert locked.returncode == 2 and "the key needs a passphrase" in locked.stderr
    unlocked = run(*argv, "--sign-passphrase-file", "pass", cwd=project)
    assert "passphrase" not in unlocked.stderr, unlocked.stderr
    assert unlocked.returncode != 0 and "127.0.0.1:9" in unlocked.stderr


def test_a_repository_command_outside_a_project_says_where_to_run_it(tmp_path: Path) -> None:
    done = run("matrix", cwd=tmp_path)
    assert done.returncode == 2
    assert "no recipes/ directory here or above" in done.stderr
    assert "hint: run in a recipe repository, or pass --project DIR" in done.stderr


def test_problems_on_a_terminal_have_their_first_line_tinted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from nestcustom.cli.common import print_problems
    from nestcustom.errors import Location, Problem, Severity

    where = Location("recipes/a.yaml", 3, 5)
    problems = [
        Problem(where, "layers[0]", "bad", hint="do this"),
        Problem(where, "", "odd", severity=Severity.WARNING),
    ]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    print_problems(problems)
    assert capsys.readouterr().err == (
        "\x1b[31mrecipes/a.yaml:3:5: layers[0]: bad\x1b[0m\n  hint: do this\n"
        "\x1b[33mrecipes/a.yaml:3:5: warning: odd\x1b[0m\n"
    )
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # a pipe or a file: plain
    print_problems(problems)
    assert capsys.readouterr().err == (
        "recipes/a.yaml:3:5: layers[0]: bad\n  hint: do this\nrecipes/a.yaml:3:5: warning: odd\n"
    )


def test_an_interrupted_document_keeps_what_the_command_had_done(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json
    import signal

    from nestcustom.cli import output
    from nestcustom.cli.common import exit_interrupted

    output.begin("test", True)
    try:
        with pytest.raises(SystemExit) as stopped:
            exit_interrupted(
                KeyboardInterrupt(), {"image": "localhost/a:1", "results": [{"ok": 1}]}
            )
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        output.begin("", False)
    assert stopped.value.code == 130
    document = json.loads(capsys.readouterr().out)
    assert (document["image"], document["results"]) == ("localhost/a:1", [{"ok": 1}])
    assert (document["exit_code"], document["error"]["kind"]) == (130, "interrupted")


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--no-reboot", "--recipe", "r.yaml"], "--recipe would do nothing with --no-reboot"),
        (
            ["--no-reboot", "--fleetlock", "http://127.0.0.1:9/", "--group", "workers"],
            "--fleetlock and --group would do nothing with --no-reboot",
        ),
        (["--no-reboot", "--reboot-timeout", "30"], "--reboot-timeout would do nothing"),
        (["--group", "workers"], "--group is a FleetLock group: it goes with --fleetlock URL"),
    ],
)
def test_deploy_refuses_options_that_would_do_nothing(
    tmp_path: Path, extra: list[str], said: str
) -> None:
    (tmp_path / "hosts.yaml").write_text("hosts:\n  - {name: h1, address: 127.0.0.1, port: 9}\n")
    (tmp_path / "r.yaml").write_text("name: r\n")
    image = "127.0.0.1:9/nestos/x@sha256:" + "a" * 64
    done = run("deploy", "-i", "hosts.yaml", image, *extra, "--dry-run", cwd=tmp_path)
    assert done.returncode == 2 and said in done.stderr, done.stderr
