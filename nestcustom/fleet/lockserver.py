"""`nestcustom fleetlock serve`: a FleetLock server (the protocol Zincati speaks) on etcd.

Requests and answers are airlock's (contract section 3), so Zincati, nestcustom
deploy and the host-side updater share one budget: POST /v1/pre-reboot takes a
slot (200), a full group answers 500 `failed_lock` "all N semaphore slots
currently locked", an unknown group 400 `unknown_group`, a bad request 400
`invalid_client_identity`; POST /v1/steady-state releases it (200 also when none
was held). Beyond airlock: etcd that cannot be reached is 503
`etcd_unavailable` (nothing granted), a halted ring 403 `ring_halted`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nestcustom import proc
from nestcustom.fleet.etcd import EtcdUnavailable
from nestcustom.fleet.lockstore import Contended, LockStore, RingHalted, UnknownGroup
from nestcustom.fleet.semaphore import AllHeld

_GROUP = re.compile(r"^[a-zA-Z0-9.-]+$")
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_REPORTED = ("digest", "ring", "health")
_BODY_LIMIT = 64 * 1024


class _BadRequest(Exception):
    pass


def _client(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    if handler.headers.get("fleet-lock-protocol", "").lower() != "true":
        raise _BadRequest("missing header fleet-lock-protocol: true")
    length = int(handler.headers.get("Content-Length") or 0)
    if not 0 < length <= _BODY_LIMIT:
        raise _BadRequest("missing or oversized body")
    try:
        params = json.loads(handler.rfile.read(length))["client_params"]
        client = {k: str(v) for k, v in params.items() if isinstance(v, str | int)}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _BadRequest(f'body is not {{"client_params": {{...}}}}: {exc}') from exc
    if not _ID.match(client.get("id", "")):
        raise _BadRequest("client_params.id is missing or not an id")
    if not _GROUP.match(client.get("group", "")):
        raise _BadRequest("client_params.group is missing or not ^[a-zA-Z0-9.-]+$")
    return client


def handler_for(store: LockStore, log: Callable[[str], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "nestcustom-fleetlock"

        def _answer(self, status: int, kind: str = "", value: str = "") -> None:
            body = json.dumps({"kind": kind, "value": value} if kind else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            try:
                client = _client(self)
                group, holder = client["group"], client["id"]
                if self.path.rstrip("/").endswith("/v1/pre-reboot"):
                    store.pre_reboot(group, holder, client.get("ring"))
                    log(f"pre-reboot {group} {holder}: granted")
                elif self.path.rstrip("/").endswith("/v1/steady-state"):
                    report = {k: client[k] for k in _REPORTED if k in client}
                    store.steady_state(group, holder, report)
                    log(f"steady-state {group} {holder}: released")
                else:
                    self._answer(404, "not_found", self.path)
                    return
                self._answer(200)
            except _BadRequest as exc:
                self._answer(400, "invalid_client_identity", str(exc))
            except UnknownGroup as exc:
                self._answer(400, "unknown_group", f"group {exc} is not served here")
            except AllHeld as exc:
                self._answer(500, "failed_lock", str(exc))
            except RingHalted as exc:
                self._answer(403, "ring_halted", f"ring {exc}: too many hosts rolled back lately")
            except (EtcdUnavailable, Contended) as exc:
                self._answer(503, "etcd_unavailable", str(exc)[:300])

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(store: LockStore, host: str, port: int, log: Callable[[str], None]) -> None:
    """Answer FleetLock requests until a stop signal (then `proc.Interrupted` says so)."""
    server = ThreadingHTTPServer((host, port), handler_for(store, log))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    groups = ", ".join(f"{g}={n}" for g, n in sorted(store.budget.slots.items()))
    log(f"FleetLock on http://{host}:{server.server_address[1]}/ ({groups} slots)")
    try:
        while thread.is_alive():
            thread.join(0.5)  # short waits: stop signals reach this thread between them
    except KeyboardInterrupt as exc:
        signum, _ = proc.stop_signal_of(exc)
        raise proc.Interrupted(
            signum, "the FleetLock server stopped; every slot and report stays in etcd"
        ) from None
    finally:
        server.shutdown()
        server.server_close()
