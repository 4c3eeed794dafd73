"""Test-universe emulator helper: `systemctl start UNIT` on a test host (no systemd as PID 1).

Runs a service unit as systemd would for the directives the units of a test image use
(systemd.unit(5), systemd.service(5), systemd.exec(5)): ConditionPathExists= (a failed
condition skips the unit, not an error; `|` makes a triggering condition), EnvironmentFile= (`-` prefix: may be missing;
KEY=VALUE lines, values in double or single quotes unescaped), Environment=, Type=
(`oneshot`: start returns when the command ends and fails with it; `simple`/`exec`:
start returns once it runs), and ExecStart= (its first command; a `-` prefix ignores its
exit status). The unit runs with a clean environment in a new session, its output
appended to /var/log/nestcustom-emu/UNIT.log (what journalctl -u would show); its state
(the `systemctl show` properties) is in /run/nestcustom-emu/units/UNIT, which nc-init
clears at every boot.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/usr/lib/systemd/system"),
)
STATE = Path("/run/nestcustom-emu/units")
LOGS = Path("/var/log/nestcustom-emu")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def unit_name(name: str) -> str:
    """systemctl's rule: a name without a unit type suffix means NAME.service."""
    return name if "." in name else f"{name}.service"


def parse(path: Path) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> values, in order; an empty assignment resets the list."""
    found: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        values = found.setdefault((section, key.strip()), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return found


def env_file_values(text: str) -> dict[str, str]:
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            body, out, i = value[1:-1], [], 0
            while i < len(body):
                if body[i] == "\\" and i + 1 < len(body):
                    out.append(ESCAPES.get(body[i + 1], body[i + 1]))
                    i += 2
                else:
                    out.append(body[i])
                    i += 1
            value = "".join(out)
        values[key.strip()] = value
    return values


def record(unit: str, unit_type: str, active: str, sub: str, result: str) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    text = f"Type={unit_type}\nResult={result}\nActiveState={active}\nSubState={sub}\n"
    tmp = STATE / f".{unit}.tmp"
    tmp.write_text(text)
    os.replace(tmp, STATE / unit)


def log(unit: str, message: str) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"{unit}.log").open("a") as out:
        out.write(message + "\n")


def conditions_hold(conditions: list[str]) -> bool:
    """ConditionPathExists= as systemd.unit(5) reads it: every plain condition must hold
    and, if any is a triggering one (`|` first, then an optional `!`), at least one of
    those must."""
    plain: list[bool] = []
    triggering: list[bool] = []
    for condition in conditions:
        kind = triggering if condition.startswith("|") else plain
        path = condition.removeprefix("|")
        kind.append(Path(path.lstrip("!")).exists() != path.startswith("!"))
    return all(plain) and (not triggering or any(triggering))


def start(unit: str) -> int:
    path = next((d / unit for d in UNIT_DIRS if (d / unit).is_file()), None)
    if path is None:
        print(f"Failed to start {unit}: Unit {unit} not found.", file=sys.stderr)
        return 5
    conf = parse(path)
    unit_type = (conf.get(("Service", "Type")) or ["simple"])[-1]
    if not conditions_hold(conf.get(("Unit", "ConditionPathExists"), [])):
        log(unit, f"Condition check resulted in {unit} being skipped.")
        record(unit, unit_type, "inactive", "dead", "success")
        return 0
    env = {"PATH": PATH, "LANG": "C.UTF-8", "INVOCATION_ID": uuid.uuid4().hex}
    for name in conf.get(("Service", "EnvironmentFile"), []):
        optional = name.startswith("-")
        file = Path(name.lstrip("-"))
        if not file.is_file():
            if optional:
                continue
            log(unit, f"{unit}: Failed to load environment files: No such file or directory")
            record(unit, unit_type, "failed", "failed", "resources")
            print(f"Job for {unit} failed because of unavailable resources.", file=sys.stderr)
            return 1
        env.update(env_file_values(file.read_text()))
    for assignment in conf.get(("Service", "Environment"), []):
        for word in shlex.split(assignment):
            key, _, value = word.partition("=")
            env[key] = value
    command = (conf.get(("Service", "ExecStart")) or [""])[0]
    ignore = command.startswith("-")
    argv = shlex.split(command.lstrip("-@:+!"))
    LOGS.mkdir(parents=True, exist_ok=True)
    if unit_type != "oneshot":
        # The supervisor runs the command and records how it ended; start returns now.
        record(unit, unit_type, "active", "running", "success")
        subprocess.Popen(
            [sys.executable, __file__, "supervise", unit, unit_type, str(int(ignore)), *argv],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, cwd="/",
        )  # fmt: skip
        return 0
    record(unit, unit_type, "activating", "start", "success")
    code = supervise(unit, unit_type, ignore, argv, env)
    if code:
        print(
            f"Job for {unit} failed because the control process exited with error code.",
            file=sys.stderr,
        )
        return 1
    return 0


def supervise(unit: str, unit_type: str, ignore: bool, argv: list[str], env: dict[str, str]) -> int:
    log(unit, f"Starting {unit}...")
    with (LOGS / f"{unit}.log").open("ab") as out:
        try:
            code = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                check=False,
                cwd="/",
            ).returncode
        except OSError as exc:
            out.write(f"{unit}: Failed to execute {argv[0]}: {exc.strerror}\n".encode())
            code = 203
    if code and not ignore:
        log(unit, f"{unit}: Main process exited, status={code}; Failed with result 'exit-code'.")
        record(unit, unit_type, "failed", "failed", "exit-code")
        return code
    log(
        unit,
        f"Finished {unit}." if unit_type == "oneshot" else f"{unit}: Deactivated successfully.",
    )
    record(unit, unit_type, "inactive", "dead", "success")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["supervise"]:
        unit, unit_type, ignore, *command = argv[1:]
        return supervise(unit, unit_type, ignore == "1", command, dict(os.environ))
    units = [unit_name(a) for a in argv if not a.startswith("-")]
    if not units:
        print("Too few arguments.", file=sys.stderr)
        return 1
    return max(start(unit) for unit in units)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
