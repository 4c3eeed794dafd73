"""The one place that runs external programs.

Every command is an argument list (never a shell string), logged with
`shlex.join` under --debug, and a failure becomes a project error that names
the command and carries its last lines of output.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from nestcustom.errors import NestcustomError

log = logging.getLogger("nestcustom.proc")

# The programs `run` is waiting for, with the thread that waits: a stop signal ends those
# run inside `abandonable()` (reads that change nothing) instead of waiting out an ssh
# ConnectTimeout in a worker. Re-entrant: a signal handler may call in while its own
# thread holds the lock.
_running: dict[subprocess.Popen[bytes], int] = {}
_abandonable: set[int] = set()
_running_lock = threading.RLock()


class CommandError(NestcustomError):
    """An external program failed or could not be started."""

    def __init__(self, message: str, hint: str | None, returncode: int, stderr: str) -> None:
        super().__init__(message, hint)
        self.returncode = returncode
        self.stderr = stderr


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT or SIGTERM) as an exception in the main thread.

    A KeyboardInterrupt, so every `finally` and `except KeyboardInterrupt` that
    cleans up after Ctrl-C also runs for SIGTERM. `state` says what the stopped
    work left behind, for the one line the CLI prints.
    """

    def __init__(self, signum: int = signal.SIGINT, state: str = "") -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.state = state

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM


def stop_signal_of(exc: BaseException) -> tuple[int, str]:
    """The signal that stopped the work and what it left: SIGINT for a bare KeyboardInterrupt."""
    signum = getattr(exc, "signum", signal.SIGINT)
    state = getattr(exc, "state", "")
    return int(signum), str(state or "")


def raise_on_stop_signals() -> None:
    """Make SIGINT and SIGTERM raise `Interrupted` in the main thread.

    Python turns only SIGINT into an exception; SIGTERM (what CI runners and
    systemd send) would kill the process without running any cleanup.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    raw_stdout: bytes  # exactly as written: digests are taken over bytes, not text


def require(program: str, package: str) -> str:
    """The path of `program`, or a clear error naming the package that provides it."""
    path = shutil.which(program)
    if path is None:
        raise NestcustomError(
            f"{program} is not installed",
            f"install it (apt-get install {package}), or run scripts/setup-host",
        )
    return path


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = 600,
    input_text: str | None = None,
    hint: str | None = None,
    own_session: bool = False,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run a program to completion and capture its output."""
    log.debug("run: %s", shlex.join(argv))
    try:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input_text is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # In its own session the terminal's Ctrl-C does not kill the program mid-step;
            # the caller decides when to stop.
            start_new_session=own_session,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{argv[0]} is not installed", hint, 127, "") from exc
    with _running_lock:
        _running[child] = threading.get_ident()
    try:
        out, err = child.communicate(
            input_text.encode() if input_text is not None else None, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        child.kill()
        child.communicate()
        raise CommandError(
            f"{shlex.join(argv)} did not finish in {timeout:.0f} s", hint, -1, ""
        ) from exc
    except BaseException:  # what subprocess.run does: the program does not outlive the wait
        child.kill()
        child.wait()
        raise
    finally:
        with _running_lock:
            _running.pop(child, None)
    done = subprocess.CompletedProcess(list(argv), child.returncode, out, err)
    stderr = done.stderr.decode(errors="replace")
    result = Result(done.returncode, done.stdout.decode(errors="replace"), stderr, done.stdout)
    if check and done.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise CommandError(
            f"{shlex.join(argv)} failed (exit {done.returncode})" + (f":\n{tail}" if tail else ""),
            hint,
            done.returncode,
            stderr,
        )
    return result


@contextmanager
def abandonable() -> Iterator[None]:
    """Programs this thread runs in the block only read (a host's status, the preflight):
    a stop signal may end them at once (`stop_running`) instead of waiting for them."""
    ident = threading.get_ident()
    with _running_lock:
        _abandonable.add(ident)
    try:
        yield
    finally:
        with _running_lock:
            _abandonable.discard(ident)


def stop_running() -> int:
    """End (SIGTERM) the programs `run` is waiting for inside `abandonable()`; how many.

    Only this process's own children are reached, each by its Popen, never by a pattern;
    a program that changes something (a rebase, a reboot) is always waited for."""
    with _running_lock:
        children = [c for c, ident in _running.items() if ident in _abandonable]
    ended = 0
    for child in children:
        if child.poll() is None:
            child.terminate()
            ended += 1
    return ended


def start(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a long-running program (a service) in the background."""
    log.debug("start: %s", shlex.join(argv))
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C at the terminal must not kill it mid-cleanup
    )


def stream(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a program whose output is read as it comes (stdout piped, stderr captured)."""
    log.debug("stream: %s", shlex.join(argv))
    try:
        return subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{argv[0]} is not installed", None, 127, "") from exc
