"""A throwaway root the build helper runs in, without podman.

The build helper (nestcustom/containerfile/build-helper.sh) runs as root inside an image
build and writes where the image's files are: /usr/lib/modules-load.d, /etc/yum.repos.d,
/usr/local, /var. To run its sub-commands as they run there, each call gets its own mount
namespace and chroots into a root made of

- /usr: the machine's own /usr (a real system: POSIX sh, coreutils, find, tar, curl,
  rpm) under an overlay, so whatever the helper writes lands in `upper/`, never in the
  machine's /usr;
- /etc, /var, /tmp, /root: fresh directories of the test (passwd and group, a NestOS
  os-release, an RPM database at /usr/share/rpm as on NestOS);
- /base: the root as it was before the test changed anything (/usr read-only), which is
  what `check --base` compares against in an image build;
- /bin/sh: bash, as on NestOS (the machine's own may be dash);
- rpm-ostree: a stand-in that records its arguments (/var/log/rpm-ostree.calls) and
  refuses a package the RPM database does not have, as the contract's `override remove`
  does (docs/contracts/nestos-rpm-ostree.md).

Needs root (mount namespaces and overlayfs), as the rest of the universe does.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

HELPER = Path(str(resources.files("nestcustom.containerfile") / "build-helper.sh"))
INSIDE_HELPER = "/run/nestcustom/build.sh"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

OS_RELEASE = textwrap.dedent(
    """\
    NAME="NestOS"
    VERSION="22.03-LTS-SP2"
    ID="nestos"
    VERSION_ID="22.03"
    PRETTY_NAME="NestOS For Container 22.03-LTS-SP2"
    """
)

RPM_OSTREE = textwrap.dedent(
    """\
    #!/bin/sh
    # rpm-ostree stand-in: records its arguments; `override remove` refuses a package
    # the RPM database does not have, as rpm-ostree does.
    printf '%s\\n' "$*" >>/var/log/rpm-ostree.calls
    if [ "$1 $2" = "override remove" ]; then
        shift 2
        for name do
            rpm -q --quiet "$name" || { echo "error: Package \\"$name\\" not found" >&2; exit 1; }
        done
    fi
    """
)

# Mounts the root's /usr and /base/usr in a namespace of its own, then runs the command
# in the root: $1 is the test's directory, the rest the command.
ENTER = textwrap.dedent(
    """\
    set -e
    top=$1
    shift
    mount -t overlay overlay -o "lowerdir=/usr,upperdir=$top/upper,workdir=$top/work" "$top/root/usr"
    mount --bind /usr "$top/root/base/usr"
    mount -o remount,bind,ro "$top/root/base/usr"
    exec chroot "$top/root" /usr/bin/env -i PATH=%PATH% HOME=/root LC_ALL=C "$@"
    """
).replace("%PATH%", PATH)


@dataclass(frozen=True)
class HelperRoot:
    top: Path  # holds root/ (the chroot), upper/ and work/ (the overlay of /usr)

    @property
    def root(self) -> Path:
        return self.top / "root"

    def path(self, inside: str) -> Path:
        """Where a path of the root is seen from outside (for /usr: what the helper wrote
        there, else the machine's own file)."""
        rel = inside.lstrip("/")
        if rel == "usr" or rel.startswith("usr/"):
            written = self.top / "upper" / rel[len("usr/") :]
            if written.is_symlink() or written.is_dir():
                return written
            if written.exists():  # a whiteout (a 0:0 device) is a removed file
                return self.top / "gone" if written.is_char_device() else written
            return Path("/") / rel
        return self.root / rel

    def write(self, inside: str, text: str | bytes, mode: int = 0o644) -> Path:
        """Put a file into the root (under /usr: into the overlay, as an earlier step would)."""
        rel = inside.lstrip("/")
        target = (
            self.top / "upper" / rel[len("usr/") :] if rel.startswith("usr/") else self.root / rel
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        target.chmod(mode)
        return target

    def remove(self, inside: str) -> None:
        """Take a file away from the root (under /usr: an overlay whiteout hides the
        machine's own)."""
        rel = inside.lstrip("/")
        if rel.startswith("usr/"):
            target = self.top / "upper" / rel[len("usr/") :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        else:
            (self.root / rel).unlink()

    def link(self, inside: str, target: str) -> None:
        """Put a symlink into the root (under /usr: into the overlay)."""
        rel = inside.lstrip("/")
        path = (
            self.top / "upper" / rel[len("usr/") :] if rel.startswith("usr/") else self.root / rel
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    def sh(self, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A shell command inside the root."""
        return self.enter(["/bin/sh", "-c", script], timeout)

    def helper(
        self, *args: str, timeout: float = 60, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`build.sh ARGS...` inside the root, as a RUN step calls it (with `env` added to
        the step's environment)."""
        inside = self.root / INSIDE_HELPER.lstrip("/")
        inside.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HELPER, inside)
        added = [f"{name}={value}" for name, value in (env or {}).items()]
        done = self.enter(["/usr/bin/env", *added, "/bin/sh", INSIDE_HELPER, *args], timeout)
        self._report_functions()
        return done

    def _report_functions(self) -> None:
        # bench/mutation/shell.py runs the tests once with a helper that notes each of its
        # functions as it is called (in /run/nestcustom/functions), to try a mutant only
        # against the tests that reach it: hand the notes over with the test's name.
        notes = self.root / "run/nestcustom/functions"
        report = os.environ.get("NC_SHELL_FUNCTIONS")
        if report and notes.exists():
            test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
            with open(report, "a") as out:
                out.writelines(f"{test}\t{name}\n" for name in set(notes.read_text().split()))
            notes.unlink()

    def enter(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", ENTER, "sh",
             str(self.top), *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def left_in_tmp(self) -> list[str]:
        """What the root's /tmp holds: a step leaves nothing there."""
        return sorted(p.name for p in (self.root / "tmp").iterdir())

    def rpm_calls(self) -> list[str]:
        log = self.root / "var/log/rpm-ostree.calls"
        return log.read_text().splitlines() if log.exists() else []

    def install_rpms(self, *rpms: Path) -> None:
        """Record RPMs in the root's database (the files are not unpacked: the helper
        only asks the database)."""
        subprocess.run(
            ["rpm", "--dbpath", str(self.top / "upper/share/rpm"), "-i", "--justdb", "--nodeps",
             "--noscripts", *map(str, rpms)],
            check=True, capture_output=True,
        )  # fmt: skip


def make_root(top: Path) -> HelperRoot:
    """A fresh root in `top` (an empty directory of the test)."""
    root = top / "root"
    for name in (
        "upper",
        "work",
        "root/usr",
        "root/base/usr",
        "root/tmp",
        "root/root",
        "root/dev",
        "root/run",
        "root/var/log",
        "root/var/tmp",
        "root/etc/rpm",
    ):
        (top / name).mkdir(parents=True, exist_ok=True)  # fmt: skip
    (root / "tmp").chmod(0o1777)
    for name in ("bin", "sbin", "lib", "lib64"):
        target = os.readlink(f"/{name}") if os.path.islink(f"/{name}") else f"usr/{name}"
        (root / name).symlink_to(target)
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        os.mknod(root / "dev" / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nncsvc:x:990:990::/:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (root / "etc/group").write_text("root:x:0:\nncsvc:x:990:\nnogroup:x:65534:\n")
    (root / "etc/os-release").write_text(OS_RELEASE)
    # The machine's alternatives (links only): /usr's links into them resolve, as in an
    # image whose /etc came with its /usr (and `check --host-rules` need not look into
    # hundreds of links that only point nowhere because /etc is new).
    if Path("/etc/alternatives").is_dir():
        shutil.copytree("/etc/alternatives", root / "etc/alternatives", symlinks=True)
    # An image's /usr/local starts empty (the machine's own is hidden: an opaque directory).
    (top / "upper/local").mkdir(parents=True)
    os.setxattr(top / "upper/local", "trusted.overlay.opaque", b"y")
    (root / "etc/rpm/macros").write_text("%_dbpath /usr/share/rpm\n%dist .oe2203sp2\n")
    bin_dir = top / "upper" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "rpm-ostree").write_text(RPM_OSTREE)
    (bin_dir / "rpm-ostree").chmod(0o755)
    # NestOS's /bin/sh is bash (in POSIX mode when called as sh), not Debian's dash: an
    # unset variable in $((...)) under `set -u` stops bash and not dash, for one.
    (bin_dir / "sh").symlink_to("bash")
    (top / "upper/share/rpm").mkdir(parents=True)
    subprocess.run(
        ["rpm", "--dbpath", str(top / "upper/share/rpm"), "--initdb"],
        check=True,
        capture_output=True,
    )
    # The root's own /etc and /var as the base had them, for `check --base /base`.
    shutil.copytree(root / "etc", root / "base/etc", symlinks=True)
    shutil.copytree(root / "var", root / "base/var", symlinks=True)
    return HelperRoot(top)


def build_rpm(topdir: Path, name: str, version: str = "1.0") -> Path:
    """A noarch RPM with no files, built by rpmbuild: a name for the database."""
    topdir.mkdir(parents=True, exist_ok=True)
    spec = topdir / f"{name}.spec"
    spec.write_text(
        f"Name: {name}\nVersion: {version}\nRelease: 1\nSummary: {name}\nLicense: MIT\n"
        f"BuildArch: noarch\n%description\n{name}\n%files\n"
    )
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {topdir}", "--define", "_dbpath /tmp/nodb",
         str(spec)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next((topdir / "RPMS" / "noarch").glob(f"{name}-{version}-*.rpm"))


def build_module(topdir: Path, name: str, kver: str, depends: str = "") -> Path:
    """A kernel module as depmod and modinfo read one: an ELF object with its .modinfo
    strings (as the universe's kmod builder makes them; it is never loaded)."""
    topdir.mkdir(parents=True, exist_ok=True)
    source = topdir / f"{name}.c"
    infos = {"name": name, "vermagic": f"{kver} SMP mod_unload ", "depends": depends,
             "license": "GPL", "description": f"{name} test module"}  # fmt: skip
    source.write_text(
        "".join(
            f'static const char nc_{key}[] __attribute__((section(".modinfo"), used, '
            f'aligned(1))) = "{key}={value}";\n'
            for key, value in infos.items()
        )
    )
    module = topdir / f"{name}.ko"
    subprocess.run(["gcc", "-c", "-o", str(module), str(source)], check=True, capture_output=True)
    return module


# dracut as the universe's fixture base has it (no real initramfs can be made here):
# records its arguments and writes the image it was asked for.
DRACUT = textwrap.dedent(
    """\
    #!/bin/sh
    printf '%s\\n' "$*" >>/var/log/dracut.calls
    for out do :; done
    echo "initramfs for $*" >"$out"
    """
)
