"""An image's root on this machine, for the image checks without podman.

The checks run their commands through a Runner (`podman exec` in production). This
one runs them chrooted into a directory laid out as an image, in a mount namespace of
its own: the host's /usr with the test's own files over it (an overlay, so sh, rpm,
readlink and systemctl are real), the host's /dev, and everything else the test's:
/etc, /tmp, and no /var unless the test makes one. `rpm` reads a database of the
test's RPMs, built by rpmbuild and installed with --justdb.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from nestcustom.image.checks import Output
from tests.gitops.rpms import Pkg, build_rpms

PATH = "/nc-bin:/usr/sbin:/usr/bin"


class ImageRoot:
    """A Runner chrooted into `root` (quoting args as testinfra does)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.usr = root.with_name(root.name + "-usr")  # the image's own files under /usr

    def run(self, command: str, *args: str, timeout: float | None = None) -> Output:
        line = command % tuple(shlex.quote(a) for a in args) if args else command
        root = shlex.quote(str(self.root))
        inner = (
            f"mount -t overlay overlay -o lowerdir={shlex.quote(str(self.usr))}:/usr {root}/usr"
            f" && mount --bind /dev {root}/dev && "
            f"exec chroot {root} /usr/bin/env -i PATH={PATH} sh -c {shlex.quote(line)}"
        )
        try:
            done = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                capture_output=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return Output(-1, b"", f"still running after {timeout:g} s", timed_out=timeout)
        return Output(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


def make_root(root: Path, work: Path, packages: list[Pkg]) -> ImageRoot:
    """`root` laid out as an image with `packages` in its rpm database (no /var)."""
    for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        (root / link).symlink_to(target)
    (root / "sbin").symlink_to("usr/sbin")
    for directory in ("usr", "dev", "etc/systemd/system", "tmp", "nc-bin", "db"):
        (root / directory).mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    root.with_name(root.name + "-usr").mkdir()
    if packages:
        rpms = build_rpms(packages, work / "rpms", work)
        subprocess.run(
            ["rpm", "--dbpath", str(root / "db"), "-i", "--justdb", "--nodeps", "--noscripts"]
            + [str(rpm) for rpm in rpms],
            check=True,
            capture_output=True,
        )
    wrapper = root / "nc-bin" / "rpm"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("rpm")} --dbpath /db "$@"\n')
    wrapper.chmod(0o755)
    return ImageRoot(root)
