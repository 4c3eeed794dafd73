"""The test universe's kernel-module builder image (tests only).

A real NestOS kmod builder is an openEuler image with gcc, make and the
kernel-devel of the base's kernel. None can be pulled here, so this builds a
Debian rootfs with the real gcc, make and kmod, plus a stand-in of the kernel's
build tree at /usr/src/kernels/<kver>: its Makefile builds `M=DIR modules` the
way kbuild's external-module build is called (obj-m in DIR/Kbuild), and its
<linux/module.h> turns MODULE_LICENSE and friends into the .modinfo strings
modinfo and depmod read. The base's kernel version comes from its variant, as
kernel-devel's would.

Cached like the bases: an image whose label holds the hash of its inputs is reused.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from .build import (
    DPKG_EXCLUDES,
    HOST_SOURCES,
    INPUTS_LABEL,
    VARIANTS,
    _build_lock,
    _run,
    image_label,
    machine_arch,
)

BUILDER_REPO = "localhost/nestcustom-test/kmod-builder"
# rpm: rpmbuild, for stages that package what they build (install: {from: STAGE, ...}).
PACKAGES = ("gcc", "libc6-dev", "make", "kmod", "rpm")

MODULE_H = r"""/* <linux/module.h> stand-in (nestcustom test universe): .modinfo strings only. */
#ifndef NESTCUSTOM_MODULE_H
#define NESTCUSTOM_MODULE_H
#define __NC_CAT2(a, b) a##b
#define __NC_CAT(a, b) __NC_CAT2(a, b)
#define MODULE_INFO(tag, info) \
    __attribute__((section(".modinfo"), used, aligned(1))) static const char \
    __NC_CAT(__nc_modinfo_, __COUNTER__)[] = #tag "=" info
#define MODULE_LICENSE(x) MODULE_INFO(license, x)
#define MODULE_DESCRIPTION(x) MODULE_INFO(description, x)
#define MODULE_AUTHOR(x) MODULE_INFO(author, x)
#define MODULE_VERSION(x) MODULE_INFO(version, x)
#define MODULE_PARM_DESC(name, x) MODULE_INFO(parm, #name ":" x)
#define module_param(name, type, perm) MODULE_INFO(parmtype, #name ":" #type)
#define module_init(fn) int init_module(void) { return fn(); }
#define module_exit(fn) void cleanup_module(void) { fn(); }
#define __init
#define __exit
#endif
"""

# kbuild's external-module call, `make -C /usr/src/kernels/KVER M=DIR modules`: each
# obj-m object of DIR/Kbuild is compiled with the module's name and this kernel's vermagic.
MAKEFILE = r"""# kbuild stand-in (nestcustom test universe)
KVER := @KVER@
.RECIPEPREFIX := >
include $(M)/Kbuild
.PHONY: modules
modules:
>@for object in $(obj-m); do \
>    name=$${object%.o}; \
>    printf 'static const char nc_name[] __attribute__((section(".modinfo"), used, aligned(1))) = "name=%s";\n' "$$name" > $(M)/.$$name.mod.c; \
>    printf 'static const char nc_vermagic[] __attribute__((section(".modinfo"), used, aligned(1))) = "vermagic=$(KVER) SMP mod_unload ";\n' >> $(M)/.$$name.mod.c; \
>    printf 'static const char nc_depends[] __attribute__((section(".modinfo"), used, aligned(1))) = "depends=";\n' >> $(M)/.$$name.mod.c; \
>    gcc -c -O2 -I$(CURDIR)/include -o $(M)/.$$name.o $(M)/$$name.c || exit 1; \
>    gcc -c -O2 -o $(M)/.$$name.mod.o $(M)/.$$name.mod.c || exit 1; \
>    ld -r -o $(M)/$$name.ko $(M)/.$$name.o $(M)/.$$name.mod.o || exit 1; \
>    echo "  LD [M]  $(M)/$$name.ko"; \
>done
"""


def builder_ref(variant: str) -> str:
    """Named by its inputs too, as the bases are: runs with other inputs (another branch's)
    each keep their own image instead of re-tagging one name under each other's feet."""
    v = VARIANTS[variant]
    digest = _inputs(f"{v.kernel}.{v.dist}.{machine_arch()}")[:12]
    return f"{BUILDER_REPO}/{digest}:{v.stream}-{machine_arch()}"


def _inputs(kver: str) -> str:
    h = hashlib.sha256()
    for part in (*PACKAGES, *DPKG_EXCLUDES, MODULE_H, MAKEFILE, kver, machine_arch()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def build_builder_image(variant: str, workdir: Path) -> str:
    """Build (or reuse) the kmod builder for `variant`'s kernel; returns its local reference."""
    v = VARIANTS[variant]
    kver = f"{v.kernel}.{v.dist}.{machine_arch()}"
    ref = builder_ref(variant)
    digest = _inputs(kver)
    with _build_lock():
        if image_label(ref, INPUTS_LABEL) == digest:
            return ref
        ctx = workdir / f"builder-{variant}"
        shutil.rmtree(ctx, ignore_errors=True)
        tree = ctx / "tree" / "usr" / "src" / "kernels" / kver
        (tree / "include" / "linux").mkdir(parents=True)
        (tree / "include" / "linux" / "module.h").write_text(MODULE_H)
        (tree / "Makefile").write_text(MAKEFILE.replace("@KVER@", kver))
        tarball = ctx / "rootfs.tar"
        cmd = [
            "mmdebstrap",
            "--variant=minbase",
            "--quiet",
            "--include=" + ",".join(PACKAGES),
            *[f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES],
            f"--customize-hook=copy-in {tree.parent.parent.parent} /",
            "bookworm",
            str(tarball),
        ]
        if HOST_SOURCES.exists():
            cmd.append(str(HOST_SOURCES))
        _run(cmd)
        _run(["podman", "import", "--change", f"LABEL {INPUTS_LABEL}={digest}", str(tarball), ref])
        shutil.rmtree(ctx)
    return ref
