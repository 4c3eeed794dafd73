"""NestOS rules for what an image keeps and what a base's rpm-ostree can do.

Files outside /etc and /usr, account files, duplicate names, layer contents,
version gates, architecture, repos, units and reserved labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from posixpath import basename

from nestcustom.errors import Problem, Severity
from nestcustom.recipe.model import (
    KERNEL_REPLACE_INITRAMFS_SINCE,
    LOCAL_RPM_INSTALL_SINCE,
    RECOMMENDS_KNOB_SINCE,
    REMOVE_WITH_INSTALL_SINCE,
    REPLACE_FROM_REPO_SINCE,
    WHITEOUTS_APPLIED_SINCE,
    FileSpec,
    Flavor,
    Recipe,
    Repo,
)
from nestcustom.recipe.rules_common import Locate, is_rpm_url, package_name, reaches_host
from nestcustom.recipe.rules_common import problem as _problem
from nestcustom.recipe.rules_language import is_nix

_ACCOUNT_FILES = {"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"}
_RPM_ARCH = re.compile(r"\.(x86_64|aarch64|riscv64|loongarch64|noarch)\.rpm$")
# The kernel by RPM file name or package name, real-time kernels included.
_KERNEL_RPM = re.compile(r"^kernel(-rt)?(-core|-modules[a-z-]*)?-\d")
_KERNEL_NAME = re.compile(r"^kernel(-rt)?(-core|-modules[a-z-]*)?$")


def files_reach_host(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is not Flavor.NESTOS:
        return
    specs: list[tuple[tuple[str | int, ...], FileSpec]] = [
        (("files", i, "dest"), spec) for i, spec in enumerate(recipe.files)
    ]
    for i, layer in enumerate(recipe.layers):
        if not (layer.files or layer.steps):
            continue
        specs += [(("layers", i, "files", j, "dest"), f) for j, f in enumerate(layer.files)]
        for j, step in enumerate(layer.steps):
            specs += [
                (("layers", i, "steps", j, "files", k, "dest"), f) for k, f in enumerate(step.files)
            ]
    for path, spec in specs:
        if is_nix(spec.dest):
            continue  # rules_language says what a host needs instead
        if spec.dest in _ACCOUNT_FILES:
            yield _problem(
                locate,
                path,
                "accounts",
                f"{spec.dest} must not be replaced in a NestOS image",
                "system users come from sysusers.d fragments in /usr/lib/sysusers.d; "
                "people are added on the host (Ignition), not in the image",
            )
        elif not reaches_host(spec.dest):
            yield _problem(
                locate,
                path,
                "dropped-path",
                f"{spec.dest} would be dropped: a NestOS host keeps only /usr and /etc from an image",
                "put programs under /usr and configuration under /etc; "
                "create /var content at boot with a tmpfiles.d fragment",
            )


def unique_names(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    for key, values in (
        ("layers", [layer.name for layer in recipe.layers]),
        ("repos", [repo.id for repo in recipe.repos]),
        ("files", [spec.dest for spec in recipe.files]),
        ("stages", [stage.name for stage in recipe.stages]),
        ("kernel-modules", [module.name for module in recipe.kernel_modules]),
    ):
        seen: dict[str, int] = {}
        field = "id" if key == "repos" else "dest" if key == "files" else "name"
        for i, value in enumerate(values):
            if value in seen:
                first = locate(key, seen[value], field)
                yield _problem(
                    locate,
                    (key, i, field),
                    "duplicate",
                    f"{value!r} is already used by {key}[{seen[value]}] (line {first.line})",
                    "includes are merged: the name may come from an included fragment",
                )
            else:
                seen[value] = i


def layer_contents(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    for i, layer in enumerate(recipe.layers):
        if layer.is_empty:
            yield _problem(
                locate,
                ("layers", i),
                "empty-layer",
                f"layer {layer.name!r} changes nothing",
                "give it install, remove, replace, swap, files, run, script or steps, or delete it",
            )
        installed = {package_name(p) for p in layer.install} if layer.remove else set()
        for j, name in enumerate(layer.remove):
            if name in installed:
                yield _problem(
                    locate,
                    ("layers", i, "remove", j),
                    "install-and-remove",
                    f"{name!r} is both installed and removed in layer {layer.name!r}",
                    "keep one of them",
                )
        for j, spec in enumerate(layer.install):
            if spec.endswith(".src.rpm"):
                yield _problem(
                    locate,
                    ("layers", i, "install", j),
                    "source-rpm",
                    "a source RPM cannot be installed",
                    "name the binary RPM",
                )
        for j, url in enumerate(layer.replace):
            if url.endswith(".src.rpm"):
                yield _problem(
                    locate,
                    ("layers", i, "replace", j),
                    "source-rpm",
                    "a source RPM cannot replace a package",
                    "name the binary RPM",
                )


def version_gates(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is not Flavor.NESTOS:
        return
    version = recipe.base.rpm_ostree
    # Compared once, not per layer (a dataclass comparison is a Python call).
    no_swap = version < REMOVE_WITH_INSTALL_SINCE
    no_replace_from = version < REPLACE_FROM_REPO_SINCE
    no_local_rpm = version < LOCAL_RPM_INSTALL_SINCE
    kernel_breaks_boot = (
        version < KERNEL_REPLACE_INITRAMFS_SINCE and not recipe.initramfs.regenerate
    )
    for i, layer in enumerate(recipe.layers):
        if not layer.weak_deps:
            # Judged by the version: before 2024.7 there is no knob at all; from 2024.7
            # rpm-ostreed.conf has Recommends=, which `rpm-ostree install` in a container
            # build does not read (no daemon: coreos/rpm-ostree#718, ublue-os/main#632).
            why = (
                "has no option to skip them (rpm-ostreed.conf's Recommends= came in "
                f"{RECOMMENDS_KNOB_SINCE})"
                if version < RECOMMENDS_KNOB_SINCE
                else "ignores rpm-ostreed.conf's Recommends= in a container build (it is read "
                "by the daemon on a host only), so nothing can skip them there"
            )
            yield _problem(
                locate,
                ("layers", i, "weak-deps"),
                "weak-deps-unsupported",
                f"rpm-ostree {version} installs the weak dependencies (Recommends) of what it "
                f"installs and {why}",
                "drop weak-deps: false, and remove the unwanted packages by name in a later "
                "layer's remove:",
            )
        if layer.swap and no_swap:
            yield _problem(
                locate,
                ("layers", i, "swap"),
                "swap-unsupported",
                f"rpm-ostree {version} silently ignores 'override remove --install' "
                f"(honoured from {REMOVE_WITH_INSTALL_SINCE})",
                "list the package under remove: and its replacement under install: "
                "(they run as two commands in the same layer)",
            )
        if layer.replace_from and no_replace_from:
            yield _problem(
                locate,
                ("layers", i, "replace-from"),
                "replace-from-unsupported",
                f"rpm-ostree {version} cannot replace from a repo "
                f"(override replace --experimental --from, from {REPLACE_FROM_REPO_SINCE})",
                "replace with RPM files by URL (replace:) where the base's rpm-ostree takes them",
            )
        if no_local_rpm:
            for j, spec in enumerate(layer.install):
                if is_rpm_url(spec):
                    yield _problem(
                        locate,
                        ("layers", i, "install", j),
                        "rpm-url-unsupported",
                        f"rpm-ostree {version} cannot install RPM files "
                        f"(from {LOCAL_RPM_INSTALL_SINCE}); it answers 'Packages not found'",
                        "publish the RPM in a repo and install it by name",
                    )
        if kernel_breaks_boot:
            # A swap to another kernel (kernel-rt) replaces the kernel as surely as a
            # replace: of a kernel RPM does.
            kernels: list[tuple[str | int, ...]] = [
                ("layers", i, "replace", j)
                for j, url in enumerate(layer.replace)
                if _KERNEL_RPM.match(basename(url))
            ]
            kernels += [
                ("layers", i, "swap", j, "install")
                for j, swap in enumerate(layer.swap)
                if any(
                    _KERNEL_NAME.match(package_name(spec)) or _KERNEL_RPM.match(basename(spec))
                    for spec in swap.install
                )
            ]
            for at in kernels:
                yield _problem(
                    locate,
                    at,
                    "kernel-replace",
                    f"replacing the kernel on rpm-ostree {version} does not regenerate "
                    "the initramfs: the host would not boot",
                    "regenerate it in the image (initramfs: {regenerate: true}), or use a base "
                    f"with rpm-ostree {KERNEL_REPLACE_INITRAMFS_SINCE} or later",
                )


def deletions_reach_host(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """Before ostree-ext 0.8.4 a host merges derived layers without their whiteouts
    (contract section 6): what a layer removes stays on the host. Said once, at the first
    layer that removes or replaces packages; a warning, as the image itself is right."""
    version = recipe.base.rpm_ostree
    if recipe.base.flavor is not Flavor.NESTOS or version >= WHITEOUTS_APPLIED_SINCE:
        return
    for i, layer in enumerate(recipe.layers):
        for key, found in (
            ("remove", layer.remove),
            ("replace", layer.replace),
            ("swap", layer.swap),
        ):
            if found:
                yield _problem(
                    locate,
                    ("layers", i, key),
                    "deletions-kept-on-host",
                    f"hosts of rpm-ostree {version} (ostree-rs-ext before 0.8.4) do not apply what a layer "
                    "deletes: the files of the packages this layer removes or replaces stay on "
                    "the host, beside .wh. marker files, although its rpm database lists them "
                    "as gone",
                    f"use a base with rpm-ostree {WHITEOUTS_APPLIED_SINCE} or later (NestOS 22.03 "
                    "SP2), or leave the package installed and disable what it starts",
                    Severity.WARNING,
                )
                return


def architecture(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    tag_arch = recipe.base.tag_arch
    if recipe.arch and tag_arch and tag_arch != recipe.arch:
        yield _problem(
            locate,
            ("base", "image"),
            "arch-mismatch",
            f"the base tag is for {tag_arch} but the recipe is for {recipe.arch}",
            "NestOS tags are per architecture: build on a base of the hosts' architecture",
        )
    want = recipe.arch or tag_arch
    if not want:
        return
    for i, layer in enumerate(recipe.layers):
        for key, specs in (("install", layer.install), ("replace", layer.replace)):
            for j, spec in enumerate(specs):
                match = _RPM_ARCH.search(spec)
                if match and match.group(1) not in (want, "noarch"):
                    yield _problem(
                        locate,
                        ("layers", i, key, j),
                        "arch-mismatch",
                        f"this RPM is built for {match.group(1)}, the image is for {want}",
                    )


def repos(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    where: list[tuple[tuple[str | int, ...], Repo]] = [
        (("repos", i), repo) for i, repo in enumerate(recipe.repos)
    ]
    where += [
        (("layers", j, "repos", i), repo)
        for j, layer in enumerate(recipe.layers)
        for i, repo in enumerate(layer.repos)
    ]
    for at, repo in where:
        if not (repo.baseurl or repo.metalink or repo.mirrorlist):
            yield _problem(
                locate,
                at,
                "repo-url",
                f"repo {repo.id!r} has no baseurl, metalink or mirrorlist",
            )
        if not repo.gpgcheck:
            yield _problem(
                locate,
                (*at, "gpgcheck"),
                "gpgcheck-off",
                f"repo {repo.id!r} installs packages without checking signatures",
                "set gpgcheck: true and a gpgkey",
                Severity.WARNING,
            )
        elif not repo.gpgkey:
            yield _problem(
                locate,
                at,
                "gpgkey-missing",
                f"repo {repo.id!r} checks signatures but names no gpgkey",
                "set gpgkey to the key's URL (or file:///etc/pki/rpm-gpg/...)",
                Severity.WARNING,
            )
        for key in ("baseurl", "metalink", "mirrorlist", "gpgkey"):
            url = getattr(repo, key)
            if url and url.startswith("http://"):
                yield _problem(
                    locate,
                    (*at, key),
                    "plain-http",
                    f"{key} uses plain http: anyone on the path can change what is installed",
                    "use https",
                    Severity.WARNING,
                )


def units(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    enabled = set(recipe.units_enable)
    for j, unit in enumerate(recipe.units_disable):
        if unit in enabled:
            yield _problem(
                locate,
                ("systemd", "disable", j),
                "unit-both",
                f"{unit} is both enabled and disabled",
            )


def labels(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is not Flavor.NESTOS:
        return
    for key, _ in recipe.labels:
        if key in ("ostree.bootable", "containers.bootc"):
            yield _problem(
                locate,
                ("labels", key),
                "bootable-label",
                f"the {key} label comes from the base image and must not be overridden",
                "without it rpm-ostree refuses to rebase a host to the image",
            )
