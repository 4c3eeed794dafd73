"""The bootstrap root (the ISO's own rpm and its libraries): from the cache, or checked and unpacked.

Before anything of the ISO's rpm runs, the host's rpm checks the
bootstrap's packages against the ISO's keys (sigcheck); then it unpacks them
(install.unpack_bootstrap). With a cache (isocache) that happens once per ISO:
the checked root is kept in the ISO's entry and later builds mount it
read-only under an overlay in the install namespace (nsinstall), so neither
the check nor the unpacking is repeated and the kept root never changes. A
build without signature checks (--no-gpgcheck) neither uses nor fills the
cache: what it would keep was never checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nestcustom.base import install, sigcheck
from nestcustom.base.isocache import Entry
from nestcustom.base.resolve import Package, Plan


@dataclass(frozen=True)
class Bootstrap:
    root: Path  # where the install namespace finds the bootstrap
    lower: Path | None  # a kept, read-only root to mount under an overlay at `root`
    from_cache: bool


def key_of(plan: Plan) -> str:
    """The cache key of the bootstrap: its packages and their checksums."""
    items = sorted((p.path, p.checksum_type, p.checksum) for p in plan.bootstrap)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:24]


def cached(entry: Entry | None, plan: Plan, gpgcheck: bool) -> Path | None:
    """The kept bootstrap root for this plan, if there is one to use."""
    if entry is None or not gpgcheck:
        return None
    return entry.bootstrap(key_of(plan))


def prepare(
    *,
    entry: Entry | None,
    plan: Plan,
    rpms: Sequence[Path],
    keys: Sequence[Path],
    stage: Path,
    work: Path,
    gpgcheck: bool,
    on_text: Callable[[str], None],
) -> Bootstrap:
    """The bootstrap for the install (see the module's doc)."""
    root = stage / "bootstrap"
    kept = cached(entry, plan, gpgcheck)
    if kept is not None:
        on_text(f"the ISO's rpm, checked and unpacked by an earlier build ({kept.name})")
        return Bootstrap(root, kept, True)
    if gpgcheck:
        on_text("checking the ISO's rpm with the host's rpm")
        sigcheck.check_bootstrap(rpms, keys, work)
    on_text(f"unpacking the ISO's rpm ({len(rpms)} packages)")
    if entry is None or not gpgcheck:
        install.unpack_bootstrap(root, rpms)
        return Bootstrap(root, None, False)
    stored = entry.store(
        f"bootstrap-{key_of(plan)}", lambda tmp: install.unpack_bootstrap(tmp, rpms)
    )
    return Bootstrap(root, stored, False)


_STRONG = {"sha256", "sha384", "sha512"}


def _checksum(package: Package) -> str | None:
    """TYPE:HEX when the repository's checksum is strong enough to stand for the bytes."""
    if package.checksum_type not in _STRONG or not package.checksum:
        return None
    return f"{package.checksum_type}:{package.checksum}"


def verified_before(entry: Entry | None, plan: Plan, gpgcheck: bool) -> list[str]:
    """Paths of the image's packages an earlier build of this ISO signature-checked."""
    if entry is None or not gpgcheck:
        return []
    known = entry.verified()
    return [p.path for p in plan.packages if _checksum(p) in known]


def record_verified(entry: Entry | None, plan: Plan, gpgcheck: bool) -> None:
    """After a successful install every package of the plan was checked: keep that."""
    if entry is not None and gpgcheck:
        entry.add_verified(c for p in plan.packages if (c := _checksum(p)))


def needed_packages(plan: Plan, entry: Entry | None, gpgcheck: bool) -> tuple[Package, ...]:
    """The packages to copy off the ISO: the image's, and the bootstrap's unless it is kept."""
    if cached(entry, plan, gpgcheck) is not None:
        return plan.packages
    return (*plan.packages, *plan.bootstrap)
