"""Shell mutants of nestcustom/containerfile/build-helper.sh, caught by running it.

mutmut mutates Python only; the build helper is POSIX sh that every RUN step calls. Its
mutants come from a small, explicit set of operators applied line by line:

  delete     a command line becomes `:` (a step that silently does nothing)
  negate     a test is turned around: `[ A = B ]` -> `[ A != B ]`, -eq/-ne, -lt/-ge,
             -gt/-le, -z/-n, `[ -e X ]` -> `[ ! -e X ]`, `if cmd` -> `if ! cmd`
  boundary   -lt -> -le, -gt -> -ge
  andor      one `&&` becomes `||` or the other way round
  status     `exit N` / `return N`: 0 <-> 1
  arith      `+ 1` -> `+ 0` in an arithmetic expansion

A mutant `sh -n` refuses is dropped (not a program, so nothing to catch). Each one is
written over the helper in a scratch copy of the project, and the tests that *run* the
helper (tests/containerfile/test_build_helper_*.py; the universe ones only for the fast
ones' survivors) are run against it: no test compares the helper's text, so a kill is a
behaviour a user would see. Verdicts are kept under the mutant's function and change, not
its line. A survivor's verdict stands while its mutated function and the tests' texts are
the same, a kill while its mutated function is (as bench/mutation/verdicts.py does for
Python: tests added since can only kill more; `--recheck` tries everything again), so a
second run tries only what changed; the run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from bench.mutation import judged
from bench.mutation.report import Outcome
from bench.mutation.workdir import ROOT, sync

HELPER = "nestcustom/containerfile/build-helper.sh"
FAST = "tests/containerfile/test_build_helper_*.py"
VERDICTS = "nc-shell-verdicts.json"

STRUCTURE = re.compile(
    r"^(\s*)(if|elif|while|until|for|case|then|else|fi|do|done|esac|\{|\}|;;|[^\s()]+\)\s*$|"
    r"\w+\(\)\s*\{)"
)
NEGATED = {"=": "!=", "!=": "=", "-eq": "-ne", "-ne": "-eq", "-lt": "-ge", "-ge": "-lt",
           "-gt": "-le", "-le": "-gt", "-z": "-n", "-n": "-z"}  # fmt: skip
BOUNDARY = {"-lt": "-le", "-gt": "-ge"}
TEST = re.compile(r"\[ (.*?) \]")


@dataclass(frozen=True)
class ShellMutant:
    line: int  # 1-based
    kind: str
    function: str  # the shell function it is in ("" at the top level)
    before: str
    after: str
    occurrence: int = 1  # the how-manieth mutant with this function and change

    @property
    def name(self) -> str:
        """Where it is now, for people: the helper's line and the operator."""
        return f"build-helper.sh:{self.line}:{self.kind}"

    @property
    def ident(self) -> str:
        """What its verdict is kept under: its function and change, never its line (lines
        added above it do not make it another mutant)."""
        base = judged.shell_key(self.function, self.change)
        return base if self.occurrence == 1 else f"{base} #{self.occurrence}"

    @property
    def change(self) -> str:
        return f"-{self.before.strip()} / +{self.after.strip()}"

    def apply(self, text: str) -> str:
        lines = text.split("\n")
        assert lines[self.line - 1] == self.before
        lines[self.line - 1] = self.after
        return "\n".join(lines)


def _code(line: str) -> str:
    """The line without a trailing comment (a `#` after a blank, outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line


def _negations(code: str) -> Iterator[tuple[str, str]]:
    for match in TEST.finditer(code):
        words = match.group(1).split(" ")
        binary = [i for i, w in enumerate(words) if w in NEGATED and w not in ("-z", "-n")]
        if binary and 0 < binary[0] < len(words) - 1:
            i = binary[0]
            flipped = [*words[:i], NEGATED[words[i]], *words[i + 1 :]]
            yield "negate", f"[ {' '.join(flipped)} ]"
            if words[i] in BOUNDARY:
                moved = [*words[:i], BOUNDARY[words[i]], *words[i + 1 :]]
                yield "boundary", f"[ {' '.join(moved)} ]"
        elif words[0] in ("-z", "-n"):
            yield "negate", f"[ {' '.join([NEGATED[words[0]], *words[1:]])} ]"
        elif words[0] != "!":
            yield "negate", f"[ ! {match.group(1)} ]"
        else:
            yield "negate", f"[ {' '.join(words[1:])} ]"


def _line_mutants(line: str) -> Iterator[tuple[str, str]]:
    code = _code(line)
    if not code.strip() or code.lstrip().startswith("#"):
        return
    indent = code[: len(code) - len(code.lstrip())]
    if not STRUCTURE.match(code) and not code.rstrip().endswith("\\"):
        yield "delete", indent + ":"
    for match in TEST.finditer(code):
        for kind, replacement in _negations(match.group(0)):
            yield kind, line[: match.start()] + replacement + line[match.end() :]
    cond = re.match(r"^(\s*(?:if|elif|while) )(?!\[|!)(.*)$", line)
    if cond:
        yield "negate", f"{cond.group(1)}! {cond.group(2)}"
    for match in re.finditer(r"&&|\|\|", code):
        other = "||" if match.group(0) == "&&" else "&&"
        yield "andor", line[: match.start()] + other + line[match.end() :]
    for match in re.finditer(r"\b(exit|return) ([01])\b", code):
        flipped = "1" if match.group(2) == "0" else "0"
        yield "status", line[: match.start(2)] + flipped + line[match.end(2) :]
    for match in re.finditer(r"\$\(\(\w+ \+ 1\)\)", code):
        yield "arith", line[: match.end() - 3] + "0))" + line[match.end() :]


def _owners(lines: list[str]) -> list[str]:
    """The function each line is in ("" for the top level; a function's closing brace is
    the top level's)."""
    owners, function = [], ""
    for line in lines:
        header = re.match(r"^(\w+)\(\) \{", line)
        if header:
            function = header.group(1)
        elif line.startswith("}"):
            function = ""
        owners.append(function)
    return owners


def mutants(text: str) -> list[ShellMutant]:
    """Every mutant of the helper's text `sh -n` accepts."""
    found: list[ShellMutant] = []
    seen: dict[tuple[str, str], int] = {}
    lines = text.split("\n")
    for number, (line, function) in enumerate(zip(lines, _owners(lines), strict=True), start=1):
        kinds: dict[str, int] = {}
        for kind, after in _line_mutants(line):
            kinds[kind] = kinds.get(kind, 0) + 1
            tag = kind if kinds[kind] == 1 else f"{kind}{kinds[kind]}"
            mutant = ShellMutant(number, tag, function, line, after)
            if not _parses(mutant.apply(text)):
                continue
            count = seen[function, mutant.change] = seen.get((function, mutant.change), 0) + 1
            found.append(dataclasses.replace(mutant, occurrence=count))
    return found


def scope(text: str, mutant: ShellMutant) -> str:
    """What the mutant's verdict stands on: its function as mutated (for a mutant at the
    top level, the top level's lines). As mutmut keeps a Python mutant's verdict until its
    function changes, a change elsewhere in the helper leaves this verdict be."""
    lines = mutant.apply(text).split("\n")
    return "\n".join(
        line for line, f in zip(lines, _owners(lines), strict=True) if f == mutant.function
    )


def _parses(text: str) -> bool:
    done = subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True, check=False)
    return done.returncode == 0


def _mutant_key(scoped: str) -> str:
    return hashlib.sha256(scoped.encode()).hexdigest()[:16]


def _key(scoped: str, tests: list[Path]) -> str:
    h = hashlib.sha256(scoped.encode())
    for path in tests:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _tests(work: Path, universe: bool) -> list[Path]:
    """The suite's test files, then the files they run the helper with."""
    found = sorted(work.glob(FAST))
    picked = [p for p in found if p.stem.endswith("_universe") == universe]
    return [
        *picked,
        work / "tests/containerfile/conftest.py",
        work / "tests/universe/helper_root.py",
    ]


def instrument(text: str) -> str:
    """The helper noting each function it enters in /run/nestcustom/functions (in the
    throwaway root; tests/universe/helper_root.py hands the notes to the run)."""
    out = []
    for line in text.split("\n"):
        out.append(line)
        header = re.match(r"^(\w+)\(\) \{$", line)
        if header:
            note = f"echo {header.group(1)} >>/run/nestcustom/functions"
            out.append(f"    [ ! -d /run/nestcustom ] || {note}")
    return "\n".join(out)


@dataclass(frozen=True)
class Coverage:
    """Which tests run each shell function, and how long each test takes."""

    tests_by_function: dict[str, list[str]]
    seconds: dict[str, float]
    untraced: list[str]  # tests that run the helper outside a throwaway root: run for all

    def tests_for(self, function: str) -> list[str]:
        chosen = set(self.untraced) | set(
            self.tests_by_function.get(function, []) if function else self.seconds
        )
        return sorted(chosen, key=lambda t: self.seconds.get(t, 0.0))


def _pytest(
    copy: Path, tests: list[str], timeout: float, extra: dict[str, str] | None = None
) -> int:
    env = dict(os.environ, PYTHONPATH=str(copy), **(extra or {}))
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    # A session of its own: a mutant that loops forever leaves no sh behind when the
    # tests' time is up (a test that runs the helper without a timeout of its own).
    with subprocess.Popen(
        [*argv, *tests], cwd=copy, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    ) as running:  # fmt: skip
        try:
            return running.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.pid, signal.SIGKILL)


def coverage(copy: Path, helper: str, suite_files: list[Path]) -> Coverage:
    """Run the suite once with an instrumented helper (clean: it must pass)."""
    (copy / HELPER).write_text(instrument(helper))
    report, junit = copy / "nc-functions.txt", copy / "nc-junit.xml"
    report.unlink(missing_ok=True)
    files = [str(p.relative_to(copy)) for p in suite_files if p.name.startswith("test_")]
    try:
        code = _pytest(
            copy, [*files, f"--junitxml={junit}"], 3600, {"NC_SHELL_FUNCTIONS": str(report)}
        )
    finally:
        (copy / HELPER).write_text(helper)
    if code != 0:
        raise SystemExit(f"build-helper: the tests fail on the helper as it is (exit {code})")
    seconds = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        seconds[f"{module}::{case.get('name')}"] = float(case.get("time", "0"))
    by_function: dict[str, set[str]] = {}
    traced = set()
    for line in report.read_text().splitlines() if report.exists() else []:
        test, _, function = line.partition("\t")
        by_function.setdefault(function, set()).add(test)
        traced.add(test)
    # A test that runs the helper with the host's sh (not in a throwaway root) notes no
    # function: it is run for every mutant, whatever else its file holds.
    untraced = [t for t in seconds if t not in traced]
    return Coverage({f: sorted(t) for f, t in by_function.items()}, seconds, untraced)


def _load(work: Path) -> dict[str, dict[str, object]]:
    try:
        data: dict[str, dict[str, object]] = json.loads((work / VERDICTS).read_text())
    except (OSError, ValueError):
        return {}
    return data


def _suite(work: Path, suite: str, todo: list[ShellMutant], jobs: int) -> None:
    """Try `todo` against one suite in `jobs` scratch copies; verdicts saved as they come."""
    copies = [work / f"copy-{n}" for n in range(jobs)]
    for copy in copies:
        sync(copy)
    files = _tests(copies[0], suite == "universe")
    if not any(t.name.startswith("test_") for t in files):
        return
    helper = (ROOT / HELPER).read_text()
    cover = coverage(copies[0], helper, files)
    print(
        f"build-helper/{suite}: {len(todo)} mutant(s); {len(cover.seconds)} tests, "
        f"{len(cover.untraced)} of them run for every mutant",
        flush=True,
    )
    free = list(copies)
    lock = threading.Lock()

    def one(mutant: ShellMutant) -> tuple[ShellMutant, int]:
        tests = cover.tests_for(mutant.function)
        if not tests:
            return mutant, 5
        with lock:
            copy = free.pop()
        # A mutant that loops forever is caught by the time its tests take unmutated
        # (plus pytest's start), three times over.
        limit = 30 + 3 * sum(cover.seconds.get(t, 0.0) for t in tests)
        try:
            (copy / HELPER).write_text(mutant.apply(helper))
            return mutant, _pytest(copy, tests, limit)
        finally:
            (copy / HELPER).write_text(helper)
            with lock:
                free.append(copy)

    key_files = _tests(copies[0], suite == "universe")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for mutant, code in pool.map(one, todo):
            verdicts = _load(work)
            entry = verdicts.setdefault(mutant.ident, {})
            scoped = scope(helper, mutant)
            entry.update({f"{suite}_key": _key(scoped, key_files), suite: code,
                          f"{suite}_mutant": _mutant_key(scoped)})  # fmt: skip
            (work / VERDICTS).write_text(json.dumps(verdicts, indent=1, sort_keys=True))


def run(work: Path, jobs: int, fast_only: bool, recheck: bool) -> None:
    work.mkdir(parents=True, exist_ok=True)
    sync(work / "copy-0")
    helper = (ROOT / HELPER).read_text()
    found = mutants(helper)
    if recheck:
        (work / VERDICTS).unlink(missing_ok=True)
    for suite in ("fast",) if fast_only else ("fast", "universe"):
        verdicts = _load(work)
        tests = _tests(work / "copy-0", suite == "universe")
        todo = to_try(found, helper, verdicts, suite, tests)
        if todo:
            _suite(work, suite, todo, jobs)


def to_try(
    found: list[ShellMutant],
    helper: str,
    verdicts: dict[str, dict[str, object]],
    suite: str,
    tests: list[Path],
) -> list[ShellMutant]:
    """The mutants whose verdict in `suite` is missing or stale."""
    todo = []
    for m in found:
        entry = verdicts.get(m.ident, {})
        if suite == "universe" and entry.get("fast") not in (0, 5):
            continue  # only the fast suite's survivors
        scoped = scope(helper, m)
        killed = entry.get(suite) not in (None, 0, 5)
        if killed and entry.get(f"{suite}_mutant") == _mutant_key(scoped):
            continue  # a kill stands until the mutated function changes
        if entry.get(f"{suite}_key") != _key(scoped, tests):
            todo.append(m)
    return todo


def helper_text() -> str:
    return (ROOT / HELPER).read_text()


def outcomes(work: Path) -> list[Outcome]:
    helper = helper_text()
    verdicts = _load(work)
    judgements = judged.load(judged.SHELL)
    out = []
    for m in mutants(helper):
        entry = verdicts.get(m.ident, {})
        if entry.get("fast_mutant") != _mutant_key(scope(helper, m)):
            by = "not run"
        elif entry.get("fast") not in (0, 5, None):
            by = "fast"
        elif entry.get("universe") not in (0, 5, None):
            by = "universe"
        elif m.ident in judgements:
            by = judgements[m.ident].kind
        else:
            by = "survived"
        out.append(Outcome(m.name, f"{HELPER} ({m.function or 'top level'})", by, m.change))
    return out
