"""The test host image: the fixture NestOS base plus the real OpenSSH server,
skopeo, sudo and systemd's tools (not as PID 1) from Debian, the host-mode
rpm-ostree emulator, and an init that "boots" at every container start."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..base.build import HOST_SOURCES, VARIANTS, os_release

HERE = Path(__file__).resolve().parent
EMULATOR = HERE / "emulator"
IMAGE = "localhost/nestcustom-test/nestos-host"
ROOTFS = "localhost/nestcustom-test/host-rootfs"
INPUTS_LABEL = "org.nestcustom.test.inputs"

HOST_PACKAGES = [
    "openssh-server",
    "openssh-client",
    "skopeo",
    "sudo",
    "procps",
    "python3",
    "ca-certificates",
    "util-linux",
    "gpg",  # containers/image's signedBy checks run gpg (gpgme), and so does deploy's check
    "gpgconf",
    "gpg-agent",
    "curl",  # deploy's check fetches signatures from the lookaside
    "systemd",  # systemd-id128 (the updater's FleetLock id); not PID 1, systemctl is emulated
]

# A host needs sshd, skopeo and sudo from Debian, whose maintainer scripts need
# perl and dpkg, which the NestOS-like build base removes on purpose. So a host
# gets its own root filesystem (mmdebstrap) and NestOS's identity on top; the
# emulator's interpreter moves off PATH, as NestOS has no python3.
CONTAINERFILE = """\
FROM {rootfs}
COPY os-release /usr/lib/os-release
RUN ln -sf ../usr/lib/os-release /etc/os-release \\
 && mkdir -p /usr/libexec/nestcustom-emu && mv "$(readlink -f /usr/bin/python3)" /usr/libexec/nestcustom-emu/python3 \\
 && rm -f /usr/bin/python3 /etc/ssh/ssh_host_* \\
 && useradd -m -s /bin/sh core && echo 'core ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/core \\
 && mkdir -p /root/.ssh /home/core/.ssh /etc/nestcustom-emu/faults /etc/containers/registries.conf.d /run/sshd \\
 && chmod 700 /root/.ssh /home/core/.ssh && chown core:core /home/core/.ssh
COPY rpm_ostree_host.py /usr/bin/rpm-ostree
COPY trustfiles.py /usr/libexec/nestcustom-emu/trustfiles.py
COPY imagefiles.py /usr/libexec/nestcustom-emu/imagefiles.py
COPY layers.py /usr/libexec/nestcustom-emu/layers.py
COPY units_host.py /usr/lib/nestcustom-emu/units_host.py
COPY kargs_host.py /usr/lib/nestcustom-emu/kargs_host.py
COPY systemctl /usr/bin/systemctl
COPY skopeo-version /usr/local/bin/skopeo
COPY nc-init /usr/local/sbin/nc-init
RUN printf '#!/bin/sh\\nexec systemctl reboot\\n' > /usr/sbin/reboot \\
 && chmod 755 /usr/bin/rpm-ostree /usr/bin/systemctl /usr/local/bin/skopeo /usr/local/sbin/nc-init /usr/sbin/reboot
LABEL {label}={inputs}
"""


def _inputs(rootfs: str) -> str:
    digest = hashlib.sha256(rootfs.encode())
    for path in sorted(EMULATOR.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(CONTAINERFILE.encode())
    return digest.hexdigest()[:16]


def _podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def _host_rootfs(workdir: Path) -> str:
    digest = hashlib.sha256("\0".join([*HOST_PACKAGES, "bookworm"]).encode()).hexdigest()[:16]
    reference = f"{ROOTFS}:{digest}"
    if subprocess.run(["podman", "image", "exists", reference], check=False).returncode == 0:
        return reference
    workdir.mkdir(parents=True, exist_ok=True)
    tarball = workdir / "host-rootfs.tar"
    command = [
        "mmdebstrap",
        "--variant=minbase",
        "--quiet",
        "--include=" + ",".join(HOST_PACKAGES),
        '--aptopt=Acquire::Check-Valid-Until "false"',
        "bookworm",
        str(tarball),
    ]
    if HOST_SOURCES.exists():
        command.append(str(HOST_SOURCES))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"mmdebstrap failed: {done.stderr[-800:]}")
    try:
        _podman("import", str(tarball), reference)
    finally:
        tarball.unlink(missing_ok=True)
    return reference


def build_host_image(workdir: Path) -> str:
    """Build (or reuse, by an inputs label) the test host image; returns its reference."""
    rootfs = _host_rootfs(workdir / "host")
    inputs = _inputs(rootfs)
    reference = f"{IMAGE}:{inputs}"
    if subprocess.run(["podman", "image", "exists", reference], check=False).returncode == 0:
        return reference
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        (context / "os-release").write_text(os_release(VARIANTS["sp2"]))
        for path in EMULATOR.iterdir():
            shutil.copy(path, context / path.name)
        (context / "Containerfile").write_text(
            CONTAINERFILE.format(rootfs=rootfs, label=INPUTS_LABEL, inputs=inputs)
        )
        _podman("build", "-q", "-t", reference, str(context))
    return reference
