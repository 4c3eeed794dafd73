"""Build the test universe's fixture NestOS base images (tests only).

A NestOS 22.03 LTS base image cannot be pulled here, so this builds a stand-in
that behaves like one inside a container build (see
docs/contracts/nestos-rpm-ostree.md sections 0 and 1):

1. ``mmdebstrap`` makes a Debian bookworm rootfs with the real ``rpm`` and the
   real ``ostree``; python3 is moved off PATH (it runs the emulators only),
   perl is removed, and /var is left with directories only. The rootfs is
   ``podman import``-ed as ``localhost/nestcustom-test/rootfs:<hash>``.
2. A spec with one sub-package per NestOS base package (``nestos-release``,
   ``openEuler-repos``, ``toolbox``, ``zincati``, ``kernel``, ``rpm-ostree``,
   ...) is built with ``rpmbuild`` and installed into the RPM database at
   /usr/share/rpm, where rpm-ostree systems keep it (without rpm's lock file,
   which rpm-ostree's compose removes).
3. A short Containerfile adds the emulators, the ostree repo config that marks
   a container build, and the NestOS labels.

Both steps are cached: an image whose label holds the hash of its inputs is
reused as is.

Usage: ``python tests/universe/base/build.py [sp2|sp1 ...]``
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EMULATORS = HERE / "emulators"
IMAGE_REPO = "localhost/nestcustom-test"  # + /<inputs>/nestos: see image_ref
ROOTFS_REPO = "localhost/nestcustom-test/rootfs"
INPUTS_LABEL = "org.nestcustom.test.inputs"
LOCK_PATH = Path("/var/tmp/nestcustom-test-base.lock")
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
EMU_PYTHON = "/usr/libexec/nestcustom-emu/python3"


@dataclass(frozen=True)
class Variant:
    """One NestOS stream the fixture image stands in for."""

    key: str
    stream: str  # 22.03-LTS-SP2
    build: str  # 20230922.0
    dist: str  # oe2203sp2
    rpm_ostree: str
    rpm_ostree_release: str
    ostree_ext: str
    kernel: str

    @property
    def version(self) -> str:
        return f"{self.stream}.{self.build}"


VARIANTS: dict[str, Variant] = {
    "sp2": Variant(
        key="sp2",
        stream="22.03-LTS-SP2",
        build="20230922.0",
        dist="oe2203sp2",
        rpm_ostree="2022.16",
        rpm_ostree_release="3",
        ostree_ext="0.9.1",
        kernel="5.10.0-153.12.0.92",
    ),
    "sp1": Variant(
        key="sp1",
        stream="22.03-LTS-SP1",
        build="20230301.0",
        dist="oe2203sp1",
        rpm_ostree="2022.8",
        rpm_ostree_release="4",
        ostree_ext="0.7.1",
        kernel="5.10.0-136.12.0.86",
    ),
}

# ------------------------------------------------------------------ rootfs

# kmod: the real depmod and modinfo; systemd: the real systemctl (enable, mask, preset
# offline); curl: downloads in the build. NestOS images have all three.
ROOTFS_PACKAGES = (
    "rpm", "ostree", "python3", "passwd", "ca-certificates", "kmod", "systemd", "curl"
)  # fmt: skip

# Runs on the host after the rootfs is complete ($1 is the rootfs).
ROOTFS_CUSTOMIZE = r"""
set -e
root="$1"
mkdir -p "$root/usr/libexec/nestcustom-emu"
mv "$root/usr/bin/python3.11" "$root/usr/libexec/nestcustom-emu/python3"
rm -f "$root"/usr/bin/python3* "$root"/usr/bin/pydoc3* "$root"/usr/bin/py3* \
      "$root"/usr/bin/perl "$root"/usr/bin/perl5* "$root"/usr/bin/pygettext3*
"""

DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-exclude=/usr/share/info/*",
)


def machine_arch() -> str:
    return platform.machine()


def image_ref(variant: str) -> str:
    """The base's reference: its inputs in the path, so checkouts with other emulators
    or packages (git worktrees, a branch under test) keep their own base side by side
    instead of rebuilding one tag in turn; the tag is the NestOS one."""
    v = VARIANTS[variant]
    return f"{IMAGE_REPO}/{inputs_hash(v)[:12]}/nestos:{v.version}-{machine_arch()}"


def _run(cmd: Sequence[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def image_id(ref: str) -> str | None:
    proc = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def image_label(ref: str, label: str) -> str | None:
    proc = subprocess.run(
        ["podman", "image", "inspect", ref], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    if not data:
        return None
    labels = data[0].get("Labels") or {}
    value = labels.get(label)
    return str(value) if value is not None else None


@contextmanager
def _build_lock() -> Iterator[None]:
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_PATH.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def rootfs_hash(packages: tuple[str, ...] = (), hooks: tuple[str, ...] = ()) -> str:
    """The hash of the rootfs recipe: the base's packages and hook, plus any extra ones."""
    h = hashlib.sha256()
    parts = (*ROOTFS_PACKAGES, *packages, ROOTFS_CUSTOMIZE, *hooks)
    for part in (*parts, *DPKG_EXCLUDES, machine_arch(), "bookworm"):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def build_rootfs(
    workdir: Path, packages: tuple[str, ...] = (), hooks: tuple[str, ...] = (), name: str = ""
) -> str:
    """The imported Debian rootfs image (cached by the hash of its recipe); `packages` and
    `hooks` add to the base's, `name` tells such a rootfs apart in its tag."""
    digest = rootfs_hash(packages, hooks)
    ref = f"{ROOTFS_REPO}:{name + '-' if name else ''}{digest[:16]}"
    if image_label(ref, INPUTS_LABEL) == digest:
        return ref
    tarball = workdir / f"rootfs{'-' + name if name else ''}.tar"
    cmd = [
        "mmdebstrap",
        "--variant=minbase",
        "--quiet",
        "--include=" + ",".join((*ROOTFS_PACKAGES, *packages)),
        '--aptopt=Acquire::Check-Valid-Until "false"',
        *[f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES],
        *[f"--customize-hook={hook}" for hook in (ROOTFS_CUSTOMIZE, *hooks)],
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


# ------------------------------------------------------------ base RPMs


def os_release(v: Variant) -> str:
    return "\n".join(
        [
            'NAME="NestOS"',
            f'VERSION="{v.version}"',
            "ID=nestos",
            'ID_LIKE="openEuler"',
            f"VERSION_ID={v.stream}",
            "PLATFORM_ID=platform:oe2203",
            f'PRETTY_NAME="NestOS For Container {v.version}"',
            'ANSI_COLOR="0;38;2;60;110;180"',
            'LOGO="nestos-logo-icon"',
            'CPE_NAME="cpe:/o:openeuler:nestos:22.03"',
            'HOME_URL="https://nestos.openeuler.org/"',
            'DOCUMENTATION_URL="https://nestos.org.cn/"',
            'BUG_REPORT_URL="https://gitee.com/openeuler/NestOS/issues"',
            'VARIANT="NestOS For Container"',
            "VARIANT_ID=nestos-for-container",
            f"OSTREE_VERSION='{v.version}'",
            "",
        ]
    )


def openeuler_repo(v: Variant) -> str:
    sections = []
    for repo_id, sub in (("OS", "OS"), ("everything", "everything"), ("update", "update")):
        sections.append(
            f"[{repo_id}]\nname={repo_id}\n"
            f"baseurl=http://repo.openeuler.invalid/openEuler-{v.stream}/{sub}/$basearch/\n"
            "enabled=0\ngpgcheck=0\n"
        )
    return "\n".join(sections)


@dataclass(frozen=True)
class BasePkg:
    name: str
    version: str
    release: str
    files: tuple[tuple[str, str, str], ...] = ()  # (path, mode, content)
    provides: tuple[str, ...] = ()
    summary: str = ""
    binaries: tuple[tuple[str, str, bytes], ...] = ()  # (path, mode, content)


# A kernel module stand-in: an ELF object whose .modinfo section modinfo and depmod
# read as they read a real module's (name, license, vermagic, depends).
KMOD_SOURCE = r"""
__attribute__((section(".modinfo"), used, aligned(1))) static const char nc_modinfo[] =
    "license=GPL\0name=@NAME@\0depends=@DEPENDS@\0vermagic=@KVER@ SMP mod_unload \0";
int @NAME@_init(void) { return 0; }
"""


def fake_module(name: str, kver: str, depends: str = "") -> bytes:
    """Compile a kernel module stand-in with the host's gcc (an ELF relocatable object)."""
    source = KMOD_SOURCE.replace("@NAME@", name).replace("@KVER@", kver)
    source = source.replace("@DEPENDS@", depends)
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / f"{name}.ko"
        subprocess.run(
            ["gcc", "-c", "-O2", "-x", "c", "-", "-o", str(obj)],
            input=source.encode(),
            capture_output=True,
            check=True,
        )
        return obj.read_bytes()


# dracut stand-in: checks its arguments as rpm-ostree images call it, reads its
# configuration as dracut does (sources /usr/lib/dracut/dracut.conf.d/*.conf, /etc/dracut.conf
# and /etc/dracut.conf.d/*.conf: add_dracutmodules+=, omit_dracutmodules+=, add_drivers+=,
# omit_drivers+=, install_items+=), refuses a module with no directory under
# /usr/lib/dracut/modules.d ("dracut module 'X' cannot be found or installed"), a driver the
# kernel lacks and a file to install that is not there, then writes an "initramfs" that
# lists what a real one would hold.
DRACUT = r"""#!/bin/bash
# bash, as dracut is: its configuration files are bash (add_drivers+=" x ").
set -eu
kver= out= hostonly=yes reproducible=no
add_dracutmodules= omit_dracutmodules= add_drivers= omit_drivers= install_items=
for conf in /usr/lib/dracut/dracut.conf.d/*.conf /etc/dracut.conf /etc/dracut.conf.d/*.conf; do
    [ -f "$conf" ] || continue
    . "$conf"
    configs="${configs:-} $conf"
done
while [ $# -gt 0 ]; do
    case $1 in
        --no-hostonly) hostonly=no ;;
        --kver) kver=$2; shift ;;
        --reproducible) reproducible=yes ;;
        --add) add_dracutmodules="$add_dracutmodules $2"; shift ;;
        --omit) omit_dracutmodules="$omit_dracutmodules $2"; shift ;;
        --add-drivers) add_drivers="$add_drivers $2"; shift ;;
        --omit-drivers) omit_drivers="$omit_drivers $2"; shift ;;
        --install) install_items="$install_items $2"; shift ;;
        -f | --force | -v) ;;
        -*) echo "dracut: unknown option $1" >&2; exit 1 ;;
        *) out=$1 ;;
    esac
    shift
done
[ -n "$kver" ] && [ -d "/usr/lib/modules/$kver" ] ||
    { echo "dracut: Cannot find module directory /usr/lib/modules/$kver/" >&2; exit 1; }
[ -n "$out" ] || { echo "dracut: no output file" >&2; exit 1; }
modules= drivers=
for module in $add_dracutmodules; do
    case " $omit_dracutmodules " in *" $module "*) continue ;; esac
    set -- /usr/lib/dracut/modules.d/[0-9][0-9]"$module"
    [ -d "$1" ] || { echo "dracut: dracut module '$module' cannot be found or installed." >&2; exit 1; }
    modules="$modules $module"
done
for driver in $add_drivers; do
    case " $omit_drivers " in *" $driver "*) continue ;; esac
    modinfo -k "$kver" -F filename "$driver" >/dev/null 2>&1 ||
        { echo "dracut: FAILED: drivers $driver not found for $kver" >&2; exit 1; }
    drivers="$drivers $driver"
done
for item in $install_items; do
    [ -e "$item" ] || { echo "dracut-install: ERROR: installing '$item'" >&2; exit 1; }
done
{
    echo "initramfs (nestcustom dracut stand-in) for $kver"
    echo "hostonly=$hostonly reproducible=$reproducible"
    for conf in ${configs:-}; do echo "config: $conf"; done
    for module in $modules; do echo "dracut module: $module"; done
    for driver in $drivers; do echo "driver: $driver"; done
    for item in $install_items; do echo "file: $item"; done
} >"$out"
"""


RPM_OSTREE_TMPFILES = """\
d /var/home 0755 root root -
d /var/opt 0755 root root -
d /var/srv 0755 root root -
d /var/roothome 0700 root root -
d /var/usrlocal 0755 root root -
d /var/mnt 0755 root root -
d /var/lib 0755 root root -
L /var/lib/rpm - - - - ../../usr/share/rpm
"""


def base_packages(v: Variant) -> list[BasePkg]:
    kver = f"{v.kernel}.{v.dist}.{machine_arch()}"
    return [
        BasePkg(
            "nestos-release",
            "22.03",
            f"1.{v.dist}",
            (
                ("/usr/lib/os-release", "0644", os_release(v)),
                ("/etc/nestos-release", "0644", f"NestOS release {v.version}\n"),
            ),
            provides=("system-release",),
            summary="NestOS release files",
        ),
        BasePkg(
            "openEuler-repos",
            "1.0",
            f"3.{v.dist}",
            (("/etc/yum.repos.d/openEuler.repo", "0644", openeuler_repo(v)),),
            summary="openEuler package repositories",
        ),
        BasePkg(
            "toolbox",
            "0.0.99.3",
            f"6.{v.dist}",
            (("/usr/bin/toolbox", "0755", "#!/bin/sh\necho 'toolbox (fixture)'\n"),),
            summary="Tool for containerized command line environments",
        ),
        BasePkg(
            "zincati",
            "0.0.24",
            f"3.{v.dist}",
            (
                ("/usr/libexec/zincati", "0755", "#!/bin/sh\necho 'zincati (fixture)'\n"),
                (
                    "/usr/lib/systemd/system/zincati.service",
                    "0644",
                    "[Unit]\nDescription=Zincati Update Agent\n\n[Service]\n"
                    "ExecStart=/usr/libexec/zincati agent\n",
                ),
            ),
            summary="Update agent for NestOS",
        ),
        BasePkg(
            "kernel",
            v.kernel.split("-")[0],
            f"{v.kernel.split('-')[1]}.{v.dist}",
            (
                (f"/usr/lib/modules/{kver}/vmlinuz", "0644", "dummy kernel image\n"),
                (
                    f"/usr/lib/modules/{kver}/modules.order",
                    "0644",
                    "kernel/drivers/nestcustom/nc_base.ko\n",
                ),
                # A kernel's own list of built-in modules (depmod reads it; one line each).
                (f"/usr/lib/modules/{kver}/modules.builtin", "0644", "kernel/fs/ext4/ext4.ko\n"),
            ),
            summary="The Linux Kernel (fixture)",
            binaries=(
                (
                    f"/usr/lib/modules/{kver}/kernel/drivers/nestcustom/nc_base.ko",
                    "0644",
                    fake_module("nc_base", kver),
                ),
            ),
        ),
        BasePkg(
            "dracut",
            "055",
            f"4.{v.dist}",
            (
                ("/usr/bin/dracut", "0755", DRACUT),
                (
                    "/etc/dracut.conf",
                    "0644",
                    "# dracut configuration (fixture): see dracut.conf.d\n",
                ),
                ("/usr/lib/dracut/modules.d/98ostree/module-setup.sh", "0755", "check() { :; }\n"),
                ("/usr/lib/dracut/modules.d/90crypt/module-setup.sh", "0755", "check() { :; }\n"),
            ),
            summary="Initramfs generator (fixture stand-in)",
        ),
        BasePkg(
            "rpm-ostree",
            v.rpm_ostree,
            f"{v.rpm_ostree_release}.{v.dist}",
            (
                ("/usr/bin/rpm-ostree", "0755", "#!/bin/sh\nexit 1\n"),
                # What a host makes of /var at boot (2022.16 src/app/rpm-ostree-0-integration.conf)
                ("/usr/lib/tmpfiles.d/rpm-ostree-0-integration.conf", "0644", RPM_OSTREE_TMPFILES),
            ),
            summary="Hybrid image/package system",
        ),
        BasePkg("ostree", "2022.7", f"1.{v.dist}", summary="Tool for managing bootable trees"),
        BasePkg("rpm", "4.17.0", f"14.{v.dist}", summary="The RPM package management system"),
        BasePkg("podman", "4.4.4", f"2.{v.dist}", summary="Manage Pods, Containers and Images"),
        BasePkg("skopeo", "1.8.0", f"5.{v.dist}", summary="Work with remote images registries"),
        BasePkg(
            "bash",
            "5.1.8",
            f"6.{v.dist}",
            provides=("/bin/sh", "/bin/bash"),
            summary="The GNU Bourne Again shell",
        ),
        BasePkg("glibc", "2.34", f"125.{v.dist}", summary="The GNU libc libraries"),
        BasePkg("systemd", "249", f"52.{v.dist}", summary="System and Service Manager"),
    ]


def base_spec(v: Variant) -> str:
    pkgs = base_packages(v)
    head = pkgs[0]
    out = [
        "%define debug_package %{nil}",
        "%define __os_install_post %{nil}",
        f"Name: {head.name}",
        f"Version: {head.version}",
        f"Release: {head.release}",
        f"Summary: {head.summary}",
        "License: MulanPSL-2.0",
        "",
        f"%description\n{head.summary}.",
        "",
    ]
    for pkg in pkgs[1:]:
        out += [
            f"%package -n {pkg.name}",
            f"Version: {pkg.version}",
            f"Release: {pkg.release}",
            f"Summary: {pkg.summary}",
            *[f"Provides: {p}" for p in pkg.provides],
            f"%description -n {pkg.name}\n{pkg.summary}.",
            "",
        ]
    out.append("%install")
    for pkg in pkgs:
        for path, mode, data in pkg.binaries:
            out += [
                f"mkdir -p %{{buildroot}}{Path(path).parent!s}",
                f"base64 -d > %{{buildroot}}{path} <<'NESTCUSTOM_EOF'",
                base64.encodebytes(data).decode().rstrip("\n"),
                "NESTCUSTOM_EOF",
                f"chmod {mode} %{{buildroot}}{path}",
            ]
        for path, mode, content in pkg.files:
            marker = "NESTCUSTOM_EOF"
            out += [
                f"mkdir -p %{{buildroot}}{Path(path).parent!s}",
                f"cat > %{{buildroot}}{path} <<'{marker}'",
                content.replace("%", "%%").rstrip("\n"),
                marker,
                f"chmod {mode} %{{buildroot}}{path}",
            ]
    out.append("")
    for i, pkg in enumerate(pkgs):
        out.append("%files" if i == 0 else f"%files -n {pkg.name}")
        for path, _mode, _data in pkg.binaries:
            out.append(path)
        for path, _mode, _content in pkg.files:
            prefix = "%config(noreplace) " if path.startswith("/etc/") else ""
            out.append(prefix + path)
        if pkg.provides and not pkg.files:
            out.append("")
        out.append("")
    return "\n".join(out)


def build_base_rpms(v: Variant, outdir: Path) -> list[Path]:
    top = outdir / "rpmbuild"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS" / "nestos-base.spec"
    spec.write_text(base_spec(v))
    _run(
        [
            "rpmbuild",
            "-bb",
            "--nodeps",
            "--quiet",
            "--define",
            f"_topdir {top}",
            "--define",
            "_build_id_links none",
            str(spec),
        ]
    )
    rpms = sorted((top / "RPMS").rglob("*.rpm"))
    dest = outdir / "rpms"
    dest.mkdir(exist_ok=True)
    out = []
    for rpm in rpms:
        target = dest / rpm.name
        shutil.copy2(rpm, target)
        out.append(target)
    shutil.rmtree(top)
    return out


# ------------------------------------------------------------------ image


def inputs_hash(v: Variant) -> str:
    h = hashlib.sha256()
    h.update(rootfs_hash().encode())
    h.update(repr(v).encode())
    h.update(machine_arch().encode())
    for path in [Path(__file__).resolve(), *sorted(EMULATORS.glob("*.py"))]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def containerfile(v: Variant, rootfs_ref: str, digest: str) -> str:
    kver = f"{v.kernel}.{v.dist}.{machine_arch()}"
    return f"""\
FROM {rootfs_ref}
COPY rpms/ /tmp/base-rpms/
RUN rm -rf /var/lib/dpkg /var/lib/apt /var/cache/* /var/log/* /etc/apt \\
 && find /var -mindepth 1 ! -type d -delete \\
 && rm -f /etc/os-release && ln -s ../usr/lib/os-release /etc/os-release \\
 && mkdir -p /usr/lib/rpm/macros.d /usr/share/rpm /sysroot/ostree/repo \\
 && printf '%s\\n' '%_dbpath /usr/share/rpm' > /usr/lib/rpm/macros.d/macros.rpm-ostree \\
 && rpm -i --force-debian --nodeps --nosignature /tmp/base-rpms/*.rpm \\
 && rm -f /usr/share/rpm/.rpm.lock \\
 && depmod -a {kver} \\
 && rm -rf /usr/local && ln -s ../var/usrlocal /usr/local \\
 && rm -rf /opt /var/opt && ln -s var/opt /opt && mkdir -p /etc/dracut.conf.d \\
 && rm -rf /tmp/base-rpms /var/tmp/* /var/cache/* \\
 && ln -s sysroot/ostree /ostree \\
 && printf '[core]\\nrepo_version=1\\nmode=bare-split-xattrs\\n' > /sysroot/ostree/repo/config \\
 && printf 'rpm-ostree={v.rpm_ostree}\\nostree-ext={v.ostree_ext}\\n' > /tmp/versions
RUN mkdir -p /usr/lib/nestcustom-emu /usr/libexec/libostree/ext \\
 && mv /tmp/versions /usr/lib/nestcustom-emu/versions
COPY --chmod=0755 rpm_ostree.py /usr/bin/rpm-ostree
COPY --chmod=0755 ostree_container.py /usr/libexec/libostree/ext/ostree-container
LABEL ostree.bootable="true" \\
      version="{v.version}" \\
      ostree.linux="{kver}" \\
      org.opencontainers.image.title="NestOS {v.stream} (nestcustom test fixture)" \\
      org.opencontainers.image.version="{v.version}" \\
      {INPUTS_LABEL}="{digest}"
CMD ["/bin/bash"]
"""


def assemble_base(v: Variant, rootfs_ref: str, ref: str, digest: str, ctx: Path) -> None:
    """Tag `ref`: `rootfs_ref` with the variant's RPMs and the two emulators, built in `ctx`."""
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    build_base_rpms(v, ctx)
    shutil.copy2(EMULATORS / "rpm_ostree.py", ctx / "rpm_ostree.py")
    shutil.copy2(EMULATORS / "ostree_container.py", ctx / "ostree_container.py")
    (ctx / "Containerfile").write_text(containerfile(v, rootfs_ref, digest))
    _run(["podman", "build", "--pull=never", "-t", ref, "-f", str(ctx / "Containerfile"), str(ctx)])
    shutil.rmtree(ctx)


def build_base_image(variant: str, workdir: Path) -> str:
    """Build (or reuse) the fixture NestOS base image; returns its local reference."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    v = VARIANTS[variant]
    ref = image_ref(variant)
    digest = inputs_hash(v)
    workdir.mkdir(parents=True, exist_ok=True)
    with _build_lock():
        if image_label(ref, INPUTS_LABEL) == digest:
            return ref
        previous = image_id(ref)
        assemble_base(v, build_rootfs(workdir), ref, digest, workdir / f"base-{variant}")
        if previous is not None and previous != image_id(ref):
            # The outdated image is untagged now; drop it unless something still uses it.
            subprocess.run(["podman", "rmi", previous], capture_output=True, check=False)
    return ref


def main(argv: Sequence[str]) -> int:
    workdir = Path("/var/tmp/nestcustom-test-base")
    for variant in argv or ["sp2"]:
        start = time.monotonic()
        ref = build_base_image(variant, workdir)
        print(f"{ref}  ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
