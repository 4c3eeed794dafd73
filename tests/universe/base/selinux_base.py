"""The SELinux-capable fixture NestOS base (tests only): the SP2 fixture plus real SELinux.

NestOS images ship policycoreutils (setsebool, semodule) and a targeted policy
whose store rpm-ostree's compose moved from /var/lib/selinux to /etc/selinux
(it appends `store-root=/etc/selinux` to semanage.conf and renames the store's
contents: rpmostree-postprocess.cxx, postprocess_selinux_policy_store_location).
This variant is the SP2 fixture built on a rootfs with Debian's real
policycoreutils, semodule-utils and selinux-policy-default (the reference
policy; its type is `default`, not `targeted`), with the store moved the same
way. No SELinux tool is emulated. Its own image (built once, cached by the hash
of its inputs like the others) keeps the other bases small.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .build import (
    IMAGE_REPO,
    INPUTS_LABEL,
    VARIANTS,
    _build_lock,
    assemble_base,
    build_rootfs,
    image_label,
    inputs_hash,
    machine_arch,
    rootfs_hash,
)

SELINUX_PACKAGES = ("policycoreutils", "semodule-utils", "selinux-policy-default")

# As rpm-ostree's compose does it ($1 is the rootfs): store-root=/etc/selinux, the store's
# contents moved from /var/lib/selinux/TYPE into /etc/selinux/TYPE, lock files removed
# (the rest of /var/lib/selinux, an empty final/, goes with /var).
SELINUX_CUSTOMIZE = r"""
set -e
root="$1"
type=$(sed -n 's/^SELINUXTYPE=//p' "$root/etc/selinux/config")
printf '\nstore-root=/etc/selinux\n' >>"$root/etc/selinux/semanage.conf"
mkdir -p "$root/etc/selinux/$type"
for entry in "$root/var/lib/selinux/$type"/*; do mv "$entry" "$root/etc/selinux/$type/"; done
rm -rf "$root/var/lib/selinux"
rm -f "$root"/etc/selinux/*/semanage.*.LOCK
"""


def _rootfs_hash() -> str:
    return rootfs_hash(SELINUX_PACKAGES, (SELINUX_CUSTOMIZE,))


def _build_rootfs(workdir: Path) -> str:
    return build_rootfs(workdir, SELINUX_PACKAGES, (SELINUX_CUSTOMIZE,), "selinux")


def selinux_image_ref() -> str:
    v = VARIANTS["sp2"]
    return f"{IMAGE_REPO}/{_inputs()[:12]}/nestos:{v.version}-{machine_arch()}"


def _inputs() -> str:
    h = hashlib.sha256()
    h.update(inputs_hash(VARIANTS["sp2"]).encode())
    h.update(_rootfs_hash().encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def build_selinux_base(workdir: Path) -> str:
    """Build (or reuse) the SELinux-capable SP2 fixture base; returns its local reference."""
    v = VARIANTS["sp2"]
    ref = selinux_image_ref()
    digest = _inputs()
    workdir.mkdir(parents=True, exist_ok=True)
    with _build_lock():
        if image_label(ref, INPUTS_LABEL) == digest:
            return ref
        assemble_base(v, _build_rootfs(workdir), ref, digest, workdir / "base-sp2-selinux")
    return ref
