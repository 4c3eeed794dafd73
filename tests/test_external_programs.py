"""The one door to external programs (nestcustom/proc.py) and the errors a user meets:
what a failed, missing, hanging or interrupted program turns into."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nestcustom import proc
from nestcustom.errors import Location, NestcustomError, Problem, RecipeError, Severity


def test_a_failure_names_the_command_its_exit_code_and_last_lines() -> None:
    script = "for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; exit 3"
    with pytest.raises(proc.CommandError) as caught:
        proc.run(["sh", "-c", script], hint="try again")
    error = caught.value
    assert error.message == (
        f"sh -c '{script}' failed (exit 3):\nline3\nline4\nline5\nline6\nline7"
    )
    assert (error.hint, error.returncode) == ("try again", 3)
    assert error.stderr == "".join(f"line{i}\n" for i in range(1, 8))


def test_a_failure_without_output_is_one_line() -> None:
    with pytest.raises(proc.CommandError) as caught:
        proc.run(["false"])
    assert (caught.value.message, caught.value.hint) == ("false failed (exit 1)", None)


def test_unchecked_failures_are_results() -> None:
    done = proc.run(["sh", "-c", "printf out; printf err >&2; exit 4"], check=False)
    assert (done.returncode, done.stdout, done.stderr, done.raw_stdout) == (4, "out", "err", b"out")


def test_output_that_is_not_utf8_is_read_not_a_traceback() -> None:
    done = proc.run(["sh", "-c", r"printf '\377ok'; printf 'e\376' >&2"])
    assert (done.stdout, done.stderr, done.raw_stdout) == ("\ufffdok", "e\ufffd", b"\xffok")
    with pytest.raises(proc.CommandError) as caught:
        proc.run(["sh", "-c", r"printf 'bad \377\n' >&2; exit 1"])
    assert (
        caught.value.message
        == "sh -c 'printf '\"'\"'bad \\377\\n'\"'\"' >&2; exit 1' failed (exit 1):\nbad \ufffd"
    )


def test_input_text_is_the_programs_stdin() -> None:
    assert proc.run(["cat"], input_text="hello\n").stdout == "hello\n"


def test_no_input_is_an_empty_stdin_not_the_callers() -> None:
    assert proc.run(["cat"], timeout=10).stdout == ""


def test_a_program_that_does_not_finish_in_time() -> None:
    with pytest.raises(proc.CommandError) as caught:
        proc.run(["sleep", "30"], timeout=1, hint="is the registry up?")
    error = caught.value
    assert (error.message, error.hint, error.returncode, error.stderr) == (
        "sleep 30 did not finish in 1 s",
        "is the registry up?",
        -1,
        "",
    )


def test_a_missing_program_is_named() -> None:
    with pytest.raises(proc.CommandError) as caught:
        proc.run(["nc-no-such-program", "--version"], hint="install it")
    error = caught.value
    assert (error.message, error.hint, error.returncode, error.stderr) == (
        "nc-no-such-program is not installed",
        "install it",
        127,
        "",
    )
    with pytest.raises(proc.CommandError) as streamed:
        proc.stream(["nc-no-such-program", "x"])
    assert (streamed.value.message, streamed.value.returncode, streamed.value.stderr) == (
        "nc-no-such-program is not installed",
        127,
        "",
    )


def test_require_names_the_package_that_provides_a_program() -> None:
    assert proc.require("sh", "dash") == "/usr/bin/sh"
    with pytest.raises(NestcustomError) as caught:
        proc.require("nc-no-such-program", "nc-tools")
    assert (caught.value.message, caught.value.hint) == (
        "nc-no-such-program is not installed",
        "install it (apt-get install nc-tools), or run scripts/setup-host",
    )


def test_every_command_is_logged_as_a_shell_would_read_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="nestcustom.proc")
    proc.run(["echo", "two words"])
    proc.start(["true", "a;b"]).wait()
    process = proc.stream(["echo", "$x"])
    process.communicate()
    assert caplog.messages == ["run: echo 'two words'", "start: true 'a;b'", "stream: echo '$x'"]


def test_a_program_runs_in_the_callers_session_unless_asked_otherwise() -> None:
    sid = [sys.executable, "-c", "import os; print(os.getsid(0))"]
    assert int(proc.run(sid).stdout) == os.getsid(0)
    assert int(proc.run(sid, own_session=True).stdout) != os.getsid(0)


def test_a_streamed_program_reads_nothing_from_the_callers_stdin(tmp_path: Path) -> None:
    # Even with a terminal (here: a pipe with data waiting) on the caller's stdin.
    read, write = os.pipe()
    os.write(write, b"typed ahead\n")
    os.close(write)
    saved = os.dup(0)
    os.dup2(read, 0)
    try:
        process = proc.stream(["cat"])
        out, _ = process.communicate(timeout=10)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read)
    assert out == b""


def test_interrupted_says_which_signal_and_maps_to_its_exit_code() -> None:
    stopped = proc.Interrupted(signal.SIGTERM, state="the tag was not moved")
    assert (str(stopped), stopped.exit_code, stopped.state) == (
        "SIGTERM",
        143,
        "the tag was not moved",
    )
    default = proc.Interrupted()
    assert (str(default), default.exit_code, default.state) == ("SIGINT", 130, "")
    assert proc.stop_signal_of(stopped) == (15, "the tag was not moved")
    assert proc.stop_signal_of(KeyboardInterrupt()) == (2, "")
    odd = proc.Interrupted(signal.SIGTERM)
    odd.state = None  # type: ignore[assignment]
    assert proc.stop_signal_of(odd) == (15, "")


def test_stop_signals_raise_in_the_main_thread() -> None:
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        proc.raise_on_stop_signals()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with pytest.raises(proc.Interrupted) as caught:
                os.kill(os.getpid(), signum)
            assert caught.value.signum == signum
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), before, strict=True):
            signal.signal(signum, handler)


def problem(message: str, hint: str | None = None, path: str = "layers[0]") -> Problem:
    return Problem(Location("r.yaml", 3, 5), path, message, hint)


def test_a_recipe_error_reads_as_its_first_problem() -> None:
    error = RecipeError([problem("bad", "fix it"), problem("worse")])
    assert error.message == str(error) == "r.yaml:3:5: layers[0]: bad\n  hint: fix it"
    assert error.hint is None and error.exit_code == 2 and len(error.problems) == 2
    assert RecipeError([]).message == "invalid recipe"


def test_a_problem_formats_with_its_place_and_severity() -> None:
    warning = Problem(Location("r.yaml", 1, 2), "", "odd", None, Severity.WARNING, "lint-x")
    assert warning.format() == "r.yaml:1:2: warning: odd"
    assert warning.as_json() == {
        "file": "r.yaml", "line": 1, "column": 2, "path": "", "severity": "warning",
        "code": "lint-x", "message": "odd", "hint": None,
    }  # fmt: skip


def test_the_json_error_of_a_bad_recipe_is_its_first_problem(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes/r.yaml").write_text(
        "name: r\nbase: {image: hub.oepkgs.net/nestos/nestos:22.03}\n"
        "layers:\n  - {name: tools, install: ['a;b']}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "nestcustom", "build", "recipes/r.yaml", "--json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    first = error["problems"][0]
    assert error["message"] == (
        f"recipes/r.yaml:4:29: layers[0].install[0]: {first['message']}\n  hint: {first['hint']}"
    )


def test_a_service_starts_in_its_own_session_reading_and_writing_nothing_but_stderr() -> None:
    # Ctrl-C at the terminal must not reach it mid-cleanup; its stdout is nobody's.
    report = (
        "import os, sys; sys.stderr.write(' '.join([str(os.getsid(0)), "
        "os.readlink('/proc/self/fd/0'), os.readlink('/proc/self/fd/1')]))"
    )
    read, write = os.pipe()
    saved = os.dup(0)
    os.dup2(read, 0)  # the caller's stdin: a pipe, as a terminal would be
    try:
        service = proc.start([sys.executable, "-c", report])
        assert service.stderr is not None
        err = service.stderr.read().decode()
        service.wait(timeout=10)
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read, write):
            os.close(fd)
    sid, stdin, stdout = err.split(" ")
    assert int(sid) == service.pid != os.getsid(0)
    assert (stdin, stdout) == ("/dev/null", "/dev/null")
