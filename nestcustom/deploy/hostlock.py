"""One rollout per host at a time: a lock file on the host, taken atomically over SSH.

The lock lives under /var (kept across reboots and deployments, unlike /run),
names the rollout, its controller and its journal, and is held from the
rebase until the host is verified or rolled back. It is taken with `ln`,
which creates the name atomically or fails, from a temporary file already
holding the owner, so no reader ever sees a half-written lock. A rollout
re-enters its own lock (a resumed rollout after a crash), and takes over
another rollout's lock only when the operator names that rollout.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass

LOCK_PATH = "/var/lib/nestcustom/rollout.lock"
_ID = re.compile(r"^[0-9a-f]{32}$")

# $1: the owner line; $2: rollout ids whose lock this rollout may take (its own first),
# space-separated hex. Prints "lock: taken", "lock: taken over" or "lock: busy <owner line>".
TAKE_SCRIPT = f"""\
lock={LOCK_PATH}
mkdir -p "${{lock%/*}}" || exit 1
tmp=$(mktemp "$lock.XXXXXX") || exit 1
printf '%s\\n' "$1" > "$tmp" || {{ rm -f "$tmp"; exit 1; }}
if ln "$tmp" "$lock" 2>/dev/null; then rm -f "$tmp"; echo "lock: taken"
else
  holder=$(cat "$lock" 2>/dev/null)
  for id in $2; do
    case "$holder" in "{{\\"rollout\\": \\"$id\\""*) mv -f "$tmp" "$lock" && echo "lock: taken over" && break;; esac
  done
  if [ -e "$tmp" ]; then rm -f "$tmp"; printf 'lock: busy %s\\n' "$holder"; exit 75; fi
fi
"""

# $1: the rollout id; removes the lock only while it is still this rollout's.
RELEASE_SCRIPT = f"""\
lock={LOCK_PATH}
case "$(cat "$lock" 2>/dev/null)" in "{{\\"rollout\\": \\"$1\\""*) rm -f "$lock";; esac
"""

BUSY_EXIT = 75


@dataclass(frozen=True)
class LockOwner:
    rollout: str  # 32 hex digits
    controller: str  # HOST:PID of the nestcustom process
    journal: str
    since: float  # epoch seconds

    def line(self) -> str:
        # "rollout" first: the shell scripts recognise an owner by this prefix.
        return json.dumps(
            {
                "rollout": self.rollout,
                "controller": self.controller,
                "journal": self.journal,
                "since": int(self.since),
            }
        )


def this_controller() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def valid_rollout_id(text: str) -> bool:
    return bool(_ID.match(text))


def parse_owner(text: str) -> LockOwner | None:
    try:
        data = json.loads(text)
        return LockOwner(
            str(data["rollout"]),
            str(data["controller"]),
            str(data["journal"]),
            float(data["since"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _age(seconds: float) -> str:
    minutes = int(max(seconds, 0) // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def controller_gone(owner: LockOwner, here: str, alive: bool) -> bool:
    """Whether the lock's controller is known to be dead: it ran on this machine (`here` is
    HOST:PID of this process) and its process (`alive`) no longer runs."""
    host, _, _ = owner.controller.rpartition(":")
    return host == here.rpartition(":")[0] and not alive


def describe_busy(owner: LockOwner | None, raw: str, now: float, gone: bool) -> tuple[str, str]:
    """(message, hint) for a host another rollout holds."""
    if owner is None:
        return (
            f"locked by something that is not a nestcustom rollout: {raw[:200]!r}",
            f"look at {LOCK_PATH} on the host",
        )
    state = "its controller process is gone" if gone else "its controller may still be running"
    message = (
        f"busy: rollout {owner.rollout} (controller {owner.controller}, journal {owner.journal}) "
        f"holds this host since {_age(now - owner.since)} ago; {state}"
    )
    hint = (
        f"let it finish, or finish it with --resume {owner.journal}; if it is dead, "
        f"take its hosts over with --take-over {owner.rollout}"
    )
    return message, hint


def pid_alive(controller: str) -> bool:
    _, _, pid = controller.rpartition(":")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError, OverflowError):
        return True  # not ours to judge: assume it runs
    return True
