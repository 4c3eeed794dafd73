"""etcd, through its v3 JSON gateway (/v3/...): the one module that talks to etcd.

The gateway is part of every etcd since 3.3 (Debian 12 ships 3.4), so no client
library is needed: etcd3 breaks with today's protobuf, the others add gRPC for
four calls. Keys and values travel base64-encoded; numbers as strings.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from nestcustom.errors import BadInputError, NestcustomError


class EtcdUnavailable(NestcustomError):
    """etcd did not answer, or answered with an error: nothing was changed by us."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Value:
    text: str
    version: int  # 0: the key does not exist


class Etcd:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInputError(
                f"--etcd {url!r} is not an http(s) URL", "for example http://127.0.0.1:2379"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            f"{self.url}/v3/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise EtcdUnavailable(f"etcd at {self.url} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EtcdUnavailable(f"etcd at {self.url} cannot be reached: {exc}") from exc

    def get(self, key: str) -> Value:
        found = self._call("kv/range", {"key": _b64(key)}).get("kvs") or []
        if not found:
            return Value("", 0)
        kv = found[0]
        return Value(base64.b64decode(kv.get("value", "")).decode(), int(kv.get("version", 0)))

    def keys(self, prefix: str) -> dict[str, str]:
        """Every key under `prefix` and its value."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        found = self._call("kv/range", {"key": _b64(prefix), "range_end": _b64(end)})
        return {
            base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
            for kv in found.get("kvs") or []
        }

    def commit_if_version(
        self,
        key: str,
        version: int,
        puts: dict[str, tuple[str, int]],
        deletes: tuple[str, ...] = (),
    ) -> bool:
        """One transaction: if `key` is still at `version` (0: absent), write every
        key -> (value, lease) of `puts` and delete `deletes`; whether it was."""
        success: list[dict[str, Any]] = []
        for name, (value, lease) in puts.items():
            put: dict[str, Any] = {"key": _b64(name), "value": _b64(value)}
            if lease:
                put["lease"] = str(lease)
            success.append({"requestPut": put})
        success += [{"requestDeleteRange": {"key": _b64(name)}} for name in deletes]
        answer = self._call(
            "kv/txn",
            {
                "compare": [
                    {
                        "target": "VERSION",
                        "key": _b64(key),
                        "result": "EQUAL",
                        "version": str(version),
                    }
                ],
                "success": success,
            },
        )
        return bool(answer.get("succeeded"))

    def put(self, key: str, value: str, lease: int = 0) -> None:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        self._call("kv/put", body)

    def delete(self, key: str) -> None:
        self._call("kv/deleterange", {"key": _b64(key)})

    def grant(self, seconds: int) -> int:
        """A lease that ends after `seconds`: keys written with it go with it."""
        return int(self._call("lease/grant", {"TTL": str(seconds)})["ID"])
