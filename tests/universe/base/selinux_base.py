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
    DPKG_EXCLUDES,
    HOST_SOURCES,
    IMAGE_REPO,
    INPUTS_LABEL,
    ROOTFS_CUSTOMIZE,
    ROOTFS_PACKAGES,
    ROOTFS_REPO,
    VARIANTS,
    _build_lock,
    _run,
    assemble_base,
    image_label,
    inputs_hash,
    machine_arch,
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
    h = hashlib.sha256()
    parts = (*ROOTFS_PACKAGES, *SELINUX_PACKAGES, ROOTFS_CUSTOMIZE, SELINUX_CUSTOMIZE)
    for part in (*parts, *DPKG_EXCLUDES, machine_arch(), "bookworm"):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _build_rootfs(workdir: Path) -> str:
    digest = _rootfs_hash()
    ref = f"{ROOTFS_REPO}:selinux-{digest[:16]}"
    if image_label(ref, INPUTS_LABEL) == digest:
        return ref
    tarball = workdir / "rootfs-selinux.tar"
    cmd = [
        "mmdebstrap",
        "--variant=minbase",
        "--quiet",
        "--include=" + ",".join((*ROOTFS_PACKAGES, *SELINUX_PACKAGES)),
        '--aptopt=Acquire::Check-Valid-Until "false"',
        *[f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES],
        "--customize-hook=" + ROOTFS_CUSTOMIZE,
        "--customize-hook=" + SELINUX_CUSTOMIZE,
        "bookworm",
        str(tarball),
    ]
    if HOST_SOURCES.exists():
        cmd.append(str(HOST_SOURCES))
    _run(cmd)
    try:
        _run(["podman", "import", "--change", f"LABEL {INPUTS_LABEL}={digest}", str(tarball), ref])
    finally:
        tarball.unlink(missing_ok=True)
    return ref


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
