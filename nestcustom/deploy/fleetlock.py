"""FleetLock client: the reboot semaphore Zincati uses (contract section 3).

Taking a slot before each reboot and releasing it after verification lets
nestcustom and Zincati share one reboot budget across a fleet. The client does
what Zincati's does (zincati v0.0.32: src/fleet_lock/mod.rs, src/identity/mod.rs):
POST `{"client_params": {"id", "group"}}` with the `fleet-lock-protocol: true`
header to BASE/v1/pre-reboot and BASE/v1/steady-state; the id is Zincati's node
id (`zincati_id`), so a slot taken for a host is the one Zincati on that host
holds or releases; the group follows Zincati's rule.

What the server answers is told apart (`classify`): a slot, all slots held
(wait until the deadline), a refusal (a 4xx such as airlock's `unknown_group`:
final), and a server error (a 5xx other than a full semaphore, a malformed
answer, no answer, a timeout): retried a few times with backoff, then an error
that names the server and its answer. `check` reaches the server before any
host changes: a steady-state for an id that holds nothing, which changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.sanitize import shown

_GROUP = re.compile(r"^[a-zA-Z0-9.-]+$")  # zincati src/identity/mod.rs validate_group_label
# Zincati's application id (src/identity/mod.rs APP_ID): its node id is
# sd_id128_get_machine_app_specific(APP_ID), HMAC-SHA256 keyed with the machine id.
ZINCATI_APP_ID = bytes.fromhex("de35106b6ec24688b63afddaa156679b")
PROBE_ID = "nestcustom-preflight-probe"  # holds nothing: a steady-state for it changes nothing
SERVER_RETRIES = 3  # further tries after a server error, 1 s, 2 s, 4 s apart
HELD_POLL = (2.0, 15.0)  # first and longest pause while every slot is held


def _sleep(seconds: float) -> bool:
    """Pause; never asks to give up (the default of the `stopped` callbacks)."""
    time.sleep(seconds)
    return False


class LockError(NestcustomError):
    """The FleetLock server refused, failed, or kept every slot held."""

    def __init__(self, message: str, hint: str | None = None, *, held: bool = False) -> None:
        super().__init__(message, hint)
        self.held = held


def zincati_id(machine_id: str) -> str | None:
    """The id Zincati sends for a host with this /etc/machine-id (32 hex digits), as lower
    hex; None when the machine id is not one."""
    try:
        machine = bytes.fromhex(machine_id.strip())
    except ValueError:
        return None
    if len(machine) != 16:
        return None
    digest = bytearray(hmac.new(machine, ZINCATI_APP_ID, hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # a v4 UUID, as systemd's id128_make_v4_uuid
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


@dataclass(frozen=True)
class Answer:
    kind: str  # "granted", "held", "refused", "server-error"
    detail: str  # what the server said, for a message


def classify(status: int | None, body: bytes, reason: str = "") -> Answer:
    """What one answer means; `status` None when there was none (`reason` says why)."""
    if status is None:
        return Answer("server-error", f"no answer: {reason}")
    if 200 <= status < 300:
        return Answer("granted", str(status))
    try:
        data = json.loads(body)
        kind, value = data["kind"], data["value"]
        if not (isinstance(kind, str) and isinstance(value, str) and kind and value):
            raise TypeError("kind and value must be non-empty text")
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode("utf-8", "replace")
        return Answer("server-error", f"HTTP {status}, not a FleetLock error: {text!r}")
    detail = f"HTTP {status} {kind}: {value}"
    # airlock answers a full semaphore with 500 failed_lock "all N semaphore slots currently
    # locked" (internal/server/pre_reboot.go, internal/lock/semaphore.go); the protocol's
    # example kind is failed_lock_semaphore_full; other servers answer 409 or 423.
    full = kind.startswith("failed_lock") and ("slot" in value or "full" in kind)
    if full or status in (409, 423):
        return Answer("held", detail)
    if 400 <= status < 500:
        return Answer("refused", detail)
    return Answer("server-error", detail)


@dataclass(frozen=True)
class FleetLock:
    base_url: str  # ends with "/"
    group: str
    timeout: float = field(default=10.0, compare=False)  # seconds per request
    backoff: float = field(default=1.0, compare=False)  # first pause after a server error

    def __post_init__(self) -> None:
        if not _GROUP.match(self.group):
            raise BadInputError(f"FleetLock group {self.group!r} must match ^[a-zA-Z0-9.-]+$")
        if not self.base_url.startswith(("http://", "https://")):
            raise BadInputError(f"FleetLock URL {self.base_url!r} must be http or https")

    def _post(self, path: str, client_id: str) -> Answer:
        body = json.dumps({"client_params": {"id": client_id, "group": self.group}}).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __post_init__
            self.base_url.rstrip("/") + "/" + path,
            data=body,
            method="POST",
            headers={"fleet-lock-protocol": "true", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return classify(response.status, b"")
        except urllib.error.HTTPError as exc:
            try:
                data = exc.read(4096)
            except OSError:
                data = b""
            return classify(exc.code, data)
        except (OSError, ValueError) as exc:  # refused, DNS, timeout, a broken answer
            reason = getattr(exc, "reason", None) or exc
            return classify(None, b"", str(reason) or type(exc).__name__)

    def _ask(self, path: str, client_id: str, stopped: Callable[[float], bool]) -> Answer:
        """One request, retried with backoff while the server fails (never while it answers)."""
        pause = self.backoff
        for attempt in range(SERVER_RETRIES + 1):
            answer = self._post(path, client_id)
            if answer.kind != "server-error" or attempt == SERVER_RETRIES:
                return answer
            if stopped(pause):
                return answer
            pause *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, path: str, answer: Answer) -> LockError:
        where = f"FleetLock server {self.base_url} ({path}, group {self.group})"
        if answer.kind == "refused":
            return LockError(
                f"{where} refused: {shown(answer.detail)}",
                "check --fleetlock and --group against the server's configuration",
            )
        return LockError(
            f"{where} failed after {SERVER_RETRIES + 1} tries: {shown(answer.detail)}",
            "the lock server itself is failing (this is not other hosts holding slots); "
            "fix or restart it, then re-run",
        )

    def check(self, stopped: Callable[[float], bool] = _sleep) -> None:
        """Reach the server and have it accept the group, before any host changes."""
        answer = self._ask("v1/steady-state", PROBE_ID, stopped)
        if answer.kind != "granted":
            raise self._fail("v1/steady-state", answer)

    def acquire(
        self,
        client_id: str,
        wait: float,
        stopped: Callable[[float], bool] = _sleep,
    ) -> None:
        """Take a reboot slot (re-entrant for the same id), waiting up to `wait` seconds from
        now while every slot is held; `stopped(seconds)` pauses and says whether to give up."""
        deadline = time.monotonic() + wait
        pause = HELD_POLL[0]
        while True:
            answer = self._ask("v1/pre-reboot", client_id, stopped)
            if answer.kind == "granted":
                return
            if answer.kind != "held":
                raise self._fail("v1/pre-reboot", answer)
            left = deadline - time.monotonic()
            if left <= 0 or stopped(min(pause * random.uniform(1.0, 1.1), left)):  # noqa: S311
                raise LockError(
                    f"no FleetLock reboot slot within {wait:.0f} s in group {self.group} "
                    f"of {self.base_url}: {shown(answer.detail)}",
                    "other hosts (or Zincati on them) hold every slot of the group; "
                    "retry later or raise the group's limit on the server",
                    held=True,
                )
            pause = min(pause * 1.5, HELD_POLL[1])

    def release(self, client_id: str) -> None:
        answer = self._ask("v1/steady-state", client_id, _sleep)
        if answer.kind != "granted":
            raise self._fail("v1/steady-state", answer)
