"""What a host says about itself, as frozen values: `rpm-ostree status --json`
(contract section 2) and the preflight facts gathered in one remote command."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from nestcustom.deploy.hostlock import LOCK_PATH
from nestcustom.deploy.kargs import KARGS_D
from nestcustom.errors import NestcustomError
from nestcustom.sanitize import clean


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
            digest = f" ({self.image_digest})" if self.image_digest else ""
            return self.image_reference + digest
        return self.origin or self.checksum

    @property
    def identity(self) -> str:
        """What the reports compare: the image digest, else the ostree origin or checksum."""
        return self.image_digest or self.origin or self.checksum


@dataclass(frozen=True)
class HostStatus:
    deployments: tuple[Deployment, ...]
    transaction: str | None  # "rebase by client(id:cli)" while one runs
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


def identity(deployment: Deployment | None) -> str | None:
    return deployment.identity if deployment is not None else None


def parse_status(text: str) -> HostStatus:
    try:
        data: Any = json.loads(text)
        deployments = tuple(_deployment(d) for d in data["deployments"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NestcustomError(f"cannot read rpm-ostree status --json: {clean(str(exc))}") from exc
    driver = data.get("update-driver")
    driver_text = None
    if isinstance(driver, dict) and driver:
        name, unit = driver.get("driver-name", "?"), driver.get("driver-sd-unit", "?")
        driver_text = clean(f"{name} ({unit})")
    transaction = data.get("transaction")
    if transaction:
        # [method, client, object path] (contract section 2); older tools printed fewer.
        words = [clean(str(w)) for w in transaction[:2]] if isinstance(transaction, list) else []
        transaction = " by ".join(words) or "a transaction"
    return HostStatus(deployments, transaction or None, driver_text)


def _text(value: Any) -> str | None:
    return clean(str(value)) if value is not None else None


def _deployment(d: dict[str, Any]) -> Deployment:
    return Deployment(
        id=clean(str(d["id"])),
        checksum=clean(str(d["checksum"])),
        booted=d.get("booted") is True,
        staged=d.get("staged") is True,
        version=_text(d.get("version")),
        image_reference=_text(d.get("container-image-reference")),
        image_digest=_text(d.get("container-image-reference-digest")),
        origin=_text(d.get("origin")),
        pinned=d.get("pinned") is True,
    )


# -- preflight facts ---------------------------------------------------------------------

# One remote command gathers every fact the preflight needs; `==name` lines split the sections.
FACTS_SCRIPT = f"""\
echo ==status; rpm-ostree status --json 2>&1 || echo ==status-failed
echo ==arch; uname -m
echo ==machine-id; cat /etc/machine-id 2>/dev/null
echo ==boot-id; cat /proc/sys/kernel/random/boot_id
echo ==rpm-ostree; rpm-ostree --version 2>/dev/null
echo ==lock; cat {LOCK_PATH} 2>/dev/null
echo; echo ==trust; echo =#nc:policy
cat /etc/containers/policy.json 2>/dev/null && echo || echo =#nc:no-policy
for f in /etc/containers/registries.d/*.yaml; do
  [ -f "$f" ] && {{ echo "=#nc:registries.d ${{f##*/}}"; cat "$f"; echo; }}
done
echo =#nc:skopeo; skopeo --version 2>/dev/null
echo ==cmdline; cat /proc/cmdline 2>/dev/null
echo ==kargs-d
for f in {KARGS_D}/*.toml; do [ -f "$f" ] && echo "--- $f" && cat "$f" && echo; done
echo ==end
"""
_SECTION = re.compile(r"^==([a-z-]+)$")
_VERSION = re.compile(r"^\s*Version:\s*'?(\d+)\.(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class HostFacts:
    status: HostStatus
    arch: str
    machine_id: str
    boot_id: str
    rpm_ostree: tuple[int, int] | None  # (2022, 16); None when the host did not say
    lock: str = ""  # the rollout lock on the host, as written; "" when there is none
    cmdline: str = ""  # /proc/cmdline of the boot the preflight saw
    kargs_d: tuple[tuple[str, str], ...] = ()  # (name, text) of the booted root's kargs.d
    trust: str = ""  # policy.json, registries.d and skopeo's version, as trust.py reads them


def parse_facts(text: str) -> HostFacts:
    """The preflight facts from FACTS_SCRIPT's output."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        marker = _SECTION.match(line)
        if marker:
            current = sections.setdefault(marker.group(1), [])
        elif current is not None:
            current.append(line)
    if "end" not in sections:
        raise NestcustomError(
            "the preflight facts were cut short", "re-run; is the host rebooting?"
        )
    status_text = "\n".join(sections.get("status", []))
    if "status-failed" in sections:
        tail = "\n".join(clean(status_text).strip().splitlines()[-3:])
        raise NestcustomError(f"rpm-ostree status failed: {tail}")
    version = _VERSION.search("\n".join(sections.get("rpm-ostree", [])))

    def first(name: str) -> str:
        return clean(" ".join(sections.get(name, [])).strip())

    return HostFacts(
        status=parse_status(status_text),
        arch=first("arch"),
        machine_id=first("machine-id"),
        boot_id=first("boot-id"),
        rpm_ostree=(int(version.group(1)), int(version.group(2))) if version else None,
        lock="\n".join(sections.get("lock", [])).strip(),
        cmdline=first("cmdline"),
        kargs_d=_kargs_files(sections.get("kargs-d", [])),
        trust="\n".join(sections.get("trust", [])),
    )


def _kargs_files(lines: list[str]) -> tuple[tuple[str, str], ...]:
    """(name, text) of each file the facts script printed after a `--- PATH` line."""
    files: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith(f"--- {KARGS_D}/"):
            files.append((line.rsplit("/", 1)[1], []))
        elif files:
            files[-1][1].append(line)
    return tuple((name, "\n".join(text)) for name, text in files)


def needs_experimental(version: tuple[int, int] | None) -> bool:
    """rpm-ostree before 2022.16 (NestOS SP1 has 2022.8) refuses a container rebase without
    --experimental; the flag is accepted by every version, so an unknown version gets it too."""
    return version is None or version < (2022, 16)
