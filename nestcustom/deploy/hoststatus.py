"""`rpm-ostree status --json`, as frozen values (contract section 2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nestcustom.errors import NestcustomError


@dataclass(frozen=True)
class Deployment:
    id: str
    checksum: str
    booted: bool
    staged: bool
    version: str | None
    image_reference: str | None  # container-image-reference, verbatim
    image_digest: str | None  # container-image-reference-digest
    origin: str | None  # ostree ref, for a deployment not from a container image
    pinned: bool = False

    @property
    def source(self) -> str:
        """What a person recognises the deployment by."""
        if self.image_reference:
            return f"{self.image_reference}" + (
                f" ({self.image_digest})" if self.image_digest else ""
            )
        return self.origin or self.checksum


@dataclass(frozen=True)
class HostStatus:
    deployments: tuple[Deployment, ...]
    transaction: bool
    update_driver: str | None  # e.g. "Zincati (zincati.service)"

    @property
    def booted(self) -> Deployment | None:
        return next((d for d in self.deployments if d.booted), None)

    @property
    def staged(self) -> Deployment | None:
        return next((d for d in self.deployments if d.staged), None)

    @property
    def rollback(self) -> Deployment | None:
        """The deployment `rpm-ostree rollback` would make first: the one after the booted."""
        rest = [d for d in self.deployments if not d.booted and not d.staged]
        return rest[0] if rest else None


def parse_status(text: str) -> HostStatus:
    try:
        data: Any = json.loads(text)
        deployments = tuple(_deployment(d) for d in data["deployments"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NestcustomError(f"cannot read rpm-ostree status --json: {exc}") from exc
    driver = data.get("update-driver")
    driver_text = None
    if isinstance(driver, dict) and driver:
        driver_text = f"{driver.get('driver-name', '?')} ({driver.get('driver-sd-unit', '?')})"
    return HostStatus(deployments, bool(data.get("transaction")), driver_text)


def _deployment(d: dict[str, Any]) -> Deployment:
    return Deployment(
        id=str(d["id"]),
        checksum=str(d["checksum"]),
        booted=bool(d.get("booted")),
        staged=bool(d.get("staged")),
        version=d.get("version"),
        image_reference=d.get("container-image-reference"),
        image_digest=d.get("container-image-reference-digest"),
        origin=d.get("origin"),
        pinned=bool(d.get("pinned")),
    )
