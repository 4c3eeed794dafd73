"""FleetLock client: the reboot semaphore Zincati uses (contract section 3).

Taking a slot before each reboot and releasing it after verification lets
nestcustom and Zincati share one reboot budget across a fleet.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from nestcustom.errors import BadInputError, NestcustomError

_GROUP = re.compile(r"^[a-zA-Z0-9.-]+$")


class LockError(NestcustomError):
    pass


@dataclass(frozen=True)
class FleetLock:
    base_url: str  # ends with "/"
    group: str

    def __post_init__(self) -> None:
        if not _GROUP.match(self.group):
            raise BadInputError(f"FleetLock group {self.group!r} must match ^[a-zA-Z0-9.-]+$")
        if not self.base_url.startswith(("http://", "https://")):
            raise BadInputError(f"FleetLock URL {self.base_url!r} must be http or https")

    def _post(self, path: str, machine_id: str) -> tuple[int, dict[str, str]]:
        body = json.dumps({"client_params": {"id": machine_id, "group": self.group}}).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __post_init__
            self.base_url.rstrip("/") + "/" + path,
            data=body,
            method="POST",
            headers={"fleet-lock-protocol": "true", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, {}
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
            except ValueError:
                detail = {}
            return exc.code, {k: str(v) for k, v in detail.items()}
        except OSError as exc:
            raise LockError(f"FleetLock server {self.base_url} unreachable: {exc}") from exc

    def acquire(self, machine_id: str, timeout: float, poll: float = 2.0) -> None:
        """Take a reboot slot (re-entrant for the same id), waiting while all are held."""
        deadline = time.monotonic() + timeout
        while True:
            status, detail = self._post("v1/pre-reboot", machine_id)
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise LockError(
                    f"no FleetLock reboot slot within {timeout:.0f} s "
                    f"({detail.get('kind', status)}: {detail.get('value', '')})",
                    "other hosts hold every slot; retry later or raise the group's limit",
                )
            time.sleep(poll)

    def release(self, machine_id: str) -> None:
        status, detail = self._post("v1/steady-state", machine_id)
        if status != 200:
            raise LockError(
                f"FleetLock did not release the slot: {detail.get('kind', status)} {detail.get('value', '')}"
            )
