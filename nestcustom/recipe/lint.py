"""NestOS rules a schema cannot express: what a host keeps, what a version can do.

Each rule is a small function that yields located Problems; `lint_recipe` runs
them all. The facts behind them are in shared/contracts/nestos-rpm-ostree.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from posixpath import basename

from nestcustom.errors import Location, Problem, Severity
from nestcustom.recipe.model import (
    KERNEL_REPLACE_INITRAMFS_SINCE,
    LOCAL_RPM_INSTALL_SINCE,
    REMOVE_WITH_INSTALL_SINCE,
    Flavor,
    Recipe,
)
from nestcustom.recipe.schema import format_path

Locate = Callable[..., Location]
Rule = Callable[[Recipe, Locate], Iterator[Problem]]

MAX_LAYERS = 60
_KEPT_ROOTS = ("/etc/", "/usr/")
# /usr/local is a symlink into /var on NestOS, so content there is dropped too.
_DROPPED_UNDER_USR = ("/usr/local/",)
_ACCOUNT_FILES = {"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"}
_RPM_ARCH = re.compile(r"\.(x86_64|aarch64|riscv64|loongarch64|noarch)\.rpm$")
_KERNEL_RPM = re.compile(r"^kernel(-core|-modules[a-z-]*)?-\d")


_NAME = re.compile(r"[^\s<>=]*")


def package_name(spec: str) -> str:
    """`strace >= 5.10` -> `strace`."""
    match = _NAME.match(spec.strip())
    return match.group() if match else ""


def is_rpm_url(spec: str) -> bool:
    return spec.endswith(".rpm") and "://" in spec


def _problem(
    locate: Locate,
    path: tuple[str | int, ...],
    code: str,
    message: str,
    hint: str | None = None,
    severity: Severity = Severity.ERROR,
) -> Problem:
    return Problem(locate(*path), format_path(path), message, hint, severity, code)


def files_reach_host(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is not Flavor.NESTOS:
        return
    for i, spec in enumerate(recipe.files):
        path = ("files", i, "dest")
        if spec.dest in _ACCOUNT_FILES:
            yield _problem(
                locate,
                path,
                "accounts",
                f"{spec.dest} must not be replaced in a NestOS image",
                "system users come from sysusers.d fragments in /usr/lib/sysusers.d; "
                "people are added on the host (Ignition), not in the image",
            )
        elif not spec.dest.startswith(_KEPT_ROOTS) or spec.dest.startswith(_DROPPED_UNDER_USR):
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
    ):
        seen: dict[str, int] = {}
        field = {"layers": "name", "repos": "id", "files": "dest"}[key]
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
    if len(recipe.layers) > MAX_LAYERS:
        yield _problem(
            locate,
            ("layers", MAX_LAYERS),
            "too-many-layers",
            f"{len(recipe.layers)} layers; at most {MAX_LAYERS} are allowed",
            "each layer is an image layer on top of the base's: merge related layers",
        )
    for i, layer in enumerate(recipe.layers):
        if layer.is_empty:
            yield _problem(
                locate,
                ("layers", i),
                "empty-layer",
                f"layer {layer.name!r} changes nothing",
                "give it install, remove, replace or swap, or delete it",
            )
        installed = {package_name(p): j for j, p in enumerate(layer.install)}
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
    for i, layer in enumerate(recipe.layers):
        if layer.swap and version < REMOVE_WITH_INSTALL_SINCE:
            yield _problem(
                locate,
                ("layers", i, "swap"),
                "swap-unsupported",
                f"rpm-ostree {version} silently ignores 'override remove --install' "
                f"(honoured from {REMOVE_WITH_INSTALL_SINCE})",
                "list the package under remove: and its replacement under install: "
                "(they run as two commands in the same layer)",
            )
        if version < LOCAL_RPM_INSTALL_SINCE:
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
        if version < KERNEL_REPLACE_INITRAMFS_SINCE:
            for j, url in enumerate(layer.replace):
                if _KERNEL_RPM.match(basename(url)):
                    yield _problem(
                        locate,
                        ("layers", i, "replace", j),
                        "kernel-replace",
                        f"replacing the kernel on rpm-ostree {version} does not regenerate "
                        "the initramfs: the host would not boot",
                        f"needs rpm-ostree {KERNEL_REPLACE_INITRAMFS_SINCE} or later in the base",
                    )


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
    for i, repo in enumerate(recipe.repos):
        if not (repo.baseurl or repo.metalink or repo.mirrorlist):
            yield _problem(
                locate,
                ("repos", i),
                "repo-url",
                f"repo {repo.id!r} has no baseurl, metalink or mirrorlist",
            )
        if not repo.gpgcheck:
            yield _problem(
                locate,
                ("repos", i, "gpgcheck"),
                "gpgcheck-off",
                f"repo {repo.id!r} installs packages without checking signatures",
                "set gpgcheck: true and a gpgkey",
                Severity.WARNING,
            )
        elif not repo.gpgkey:
            yield _problem(
                locate,
                ("repos", i),
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
                    ("repos", i, key),
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


RULES: tuple[Rule, ...] = (
    files_reach_host,
    unique_names,
    layer_contents,
    version_gates,
    architecture,
    repos,
    units,
    labels,
)


def lint_recipe(recipe: Recipe, locate: Locate) -> list[Problem]:
    return [problem for rule in RULES for problem in rule(recipe, locate)]
