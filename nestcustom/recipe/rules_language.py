"""NestOS rules for the language's newer keys: a layer's files and steps, RPM files from
stages and images, kernel arguments, one user's units, downloads to decompress, /nix and
flatpaks (both refused, with what works instead)."""

from __future__ import annotations

from collections.abc import Iterator

from nestcustom.errors import Problem, Severity
from nestcustom.recipe.model import LOCAL_RPM_INSTALL_SINCE, Flavor, Recipe
from nestcustom.recipe.rules_common import Locate, Rule
from nestcustom.recipe.rules_common import problem as _problem

# Set by ostree and the boot loader for each deployment: a recipe cannot choose them.
_MANAGED_KARGS = ("ostree", "BOOT_IMAGE", "initrd")
# What each host boots with, set when it was installed (its root device, how it is
# mounted, the init the initramfs hands over to): deleting or replacing one from an
# image, for every host at once, leaves hosts that cannot boot.
_BOOT_KARGS = ("root", "rootflags", "rw", "ro", "init")
NIX_HINT = (
    "a host needs /nix made at boot, with its store on persistent storage: a oneshot unit "
    "that runs `chattr -i /`, `mkdir -p /nix`, `chattr +i /` before local-fs.target and a "
    "nix.mount that bind-mounts /var/lib/nix on /nix (what the Determinate Nix installer's "
    "ostree planner sets up); ship those units with files: under /usr/lib/systemd/system, "
    "and install Nix on the host"
)


def is_nix(path: str) -> bool:
    return path == "/nix" or path.startswith("/nix/")


def nix_problem(locate: Locate, where: tuple[str | int, ...], path: str) -> Problem:
    return _problem(
        locate,
        where,
        "nix-store",
        f"{path}: /nix is not part of a NestOS image: its root is read-only, a host keeps only "
        "/usr and /etc from an image, and the Nix store must outlive image updates",
        NIX_HINT,
    )


def layer_steps(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    newstart = recipe.base.flavor is Flavor.NEWSTART
    old = recipe.base.rpm_ostree < LOCAL_RPM_INSTALL_SINCE and not newstart
    stages = {stage.name for stage in recipe.stages}
    for i, layer in enumerate(recipe.layers):
        # A layer's run: and script: run after its package changes and files, and so after
        # every step, wherever the YAML writes them: with steps: that order would be hidden.
        for key, given in (("run", layer.run), ("script", layer.scripts)):
            if layer.steps and given:
                yield _problem(
                    locate,
                    ("layers", i, key),
                    "steps-and-commands",
                    f"a layer with steps: cannot also have {key}:",
                    "put these commands into steps: where they should run (- run: [...] or "
                    "- script: {...}); steps run in the order written",
                )
        for j, step in enumerate(layer.steps):
            if step.selinux is not None and not step.selinux.is_set:
                # {} is the schema's; {priority: N} or empty lists reach here.
                yield _problem(
                    locate,
                    ("layers", i, "steps", j, "selinux"),
                    "empty-step",
                    "an selinux step sets nothing",
                    "give it modules: or booleans:, or delete the step",
                )
            if step.kind == "initramfs" and newstart:
                yield _problem(
                    locate,
                    ("layers", i, "steps", j, "initramfs"),
                    "not-bootable",
                    "a NewStart image is a plain container: an initramfs would never be used",
                    "kernel modules and the initramfs belong in a NestOS (bootable) image",
                )
        for local in layer.local_rpms:
            at = ("layers", i, "install", local.index)
            if "/" not in local.source and local.source not in stages:
                yield _problem(
                    locate,
                    (*at, "from"),
                    "unknown-stage",
                    f"no stage is named {local.source!r}",
                    f"stages: {', '.join(sorted(stages)) or 'none'}; an image needs its "
                    "registry/name",
                )
            elif "/" in local.source and "@sha256:" not in local.source:
                # rpm-ostree installs local RPM files without a signature check: the digest
                # is all that says these are the files that were reviewed.
                yield _problem(
                    locate,
                    (*at, "from"),
                    "rpm-image-unpinned",
                    f"RPM files from {local.source} are installed without a signature check, "
                    "and a tag can be moved to other files",
                    "pin the image with @sha256:DIGEST (podman image inspect --format "
                    "'{{.Digest}}' IMAGE), or build the RPMs in a stage of this recipe",
                    Severity.WARNING,
                )
            if old:
                yield _problem(
                    locate,
                    at,
                    "rpm-file-unsupported",
                    f"rpm-ostree {recipe.base.rpm_ostree} cannot install RPM files "
                    f"(from {LOCAL_RPM_INSTALL_SINCE}); it answers 'Packages not found'",
                    "publish the RPMs in a repo and install them by name, or build on a base "
                    "with rpm-ostree 2022.10 or later (NestOS 22.03 SP2)",
                )


def kernel_arguments(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    kargs = recipe.kernel_arguments
    if not kargs.is_set:
        return
    if recipe.base.flavor is Flavor.NEWSTART:
        yield _problem(
            locate,
            ("kernel-arguments",),
            "not-bootable",
            "a NewStart image is a plain container: kernel arguments would never be used",
            "kernel arguments belong in a NestOS (bootable) image",
        )
        return
    if not kargs.append and locate("kernel-arguments", "append") != locate("kernel-arguments"):
        yield _problem(
            locate,
            ("kernel-arguments", "append"),
            "karg-append-empty",
            "append: [] appends nothing: deploy removes the arguments the previous image "
            "appended, and no others",
            "to remove arguments hosts have, use delete:",
            Severity.WARNING,
        )
    keys = {"append": kargs.append, "delete": kargs.delete, "replace": kargs.replace}
    for key, items in keys.items():
        for j, arg in enumerate(items):
            name = arg.split("=", 1)[0]
            if name in _MANAGED_KARGS:
                yield _problem(
                    locate,
                    ("kernel-arguments", key, j),
                    "managed-karg",
                    f"{name}= is set by ostree and the boot loader for each deployment",
                    "leave it out; it cannot be chosen in an image",
                )
            elif name in _BOOT_KARGS and key != "append":
                yield _problem(
                    locate,
                    ("kernel-arguments", key, j),
                    "boot-karg",
                    f"{name} is what hosts boot with (set when each was installed): "
                    f"{'deleting' if key == 'delete' else 'replacing'} it in every host's "
                    "deployment can leave them unable to boot",
                    "leave it out; change it on one host with rpm-ostree kargs, where its "
                    "console can undo it",
                )
    appended = set(kargs.append)
    for j, arg in enumerate(kargs.delete):
        if arg in appended:
            yield _problem(
                locate,
                ("kernel-arguments", "delete", j),
                "karg-both",
                f"{arg} is both appended and deleted",
                "keep one of them",
            )
    named = {a.split("=", 1)[0] for a in (*kargs.append, *kargs.delete)}
    for j, arg in enumerate(kargs.replace):
        if arg.split("=", 1)[0] in named:
            yield _problem(
                locate,
                ("kernel-arguments", "replace", j),
                "karg-both",
                f"{arg.split('=', 1)[0]} is replaced and also appended or deleted",
                "replace: sets the one value a key has; keep it in one list",
            )
    arch = recipe.arch or recipe.base.tag_arch
    if arch and not kargs.applies_to(arch):
        yield _problem(
            locate,
            ("kernel-arguments", "match-architectures"),
            "karg-arch",
            f"the image is for {arch}, which match-architectures leaves out: no host of it "
            "gets these arguments",
            f"add {arch}, or drop kernel-arguments:",
            Severity.WARNING,
        )


def user_units(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if not recipe.user_units:
        return
    everyone = set(recipe.units.user_enable)
    for i, entry in enumerate(recipe.user_units):
        for j, unit in enumerate(entry.enable):
            if unit in everyone:
                yield _problem(
                    locate,
                    ("systemd", "user-units", i, "enable", j),
                    "unit-both",
                    f"{unit} is enabled for every user (systemd.user) and for {entry.user} only",
                    "keep one of them: the ConditionUser= drop-in would hold for both",
                )
    if recipe.user_units and recipe.base.flavor is not Flavor.NESTOS:
        yield _problem(
            locate,
            ("systemd", "user-units"),
            "user-units-newstart",
            "user units start with a user's systemd manager at login or boot",
            "a NewStart container image that does not boot systemd never starts them",
            Severity.WARNING,
        )


def downloads(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    for i, download in enumerate(recipe.downloads):  # most recipes have none
        if download.decompress and download.extract:
            yield _problem(
                locate,
                ("downloads", i, "decompress"),
                "download-both",
                "a download is either unpacked (extract: a tar archive into a directory) or "
                "decompressed (decompress: one file), not both",
                "a .tar.gz is extract: true; a single .gz file is decompress: gzip",
            )
        if download.dest.endswith("/") and not download.extract:
            # A file download's dest is the file itself: a directory there would leave the
            # helper's temporary name in it (plain) or fail the build (decompress).
            yield _problem(
                locate,
                ("downloads", i, "dest"),
                "download-dest-directory",
                f"{download.dest} ends in '/': a download without extract: is one file, and "
                "dest is that file's path",
                f"name the file, e.g. {download.dest}{_file_name(download.url)}; or set "
                "extract: true to unpack a tar archive into the directory",
            )


def _file_name(url: str) -> str:
    name = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".gz") or "NAME"


def nix(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.base.flavor is not Flavor.NESTOS or not _mentions_nix(recipe):
        return
    paths: list[tuple[tuple[str | int, ...], str]] = [
        *((("files", i, "dest"), f.dest) for i, f in enumerate(recipe.files)),
        *((("symlinks", i, "path"), s.path) for i, s in enumerate(recipe.symlinks)),
        *((("directories", i, "path"), d.path) for i, d in enumerate(recipe.directories)),
        *((("downloads", i, "dest"), x.dest) for i, x in enumerate(recipe.downloads)),
    ]
    for i, layer in enumerate(recipe.layers):
        if not (layer.files or layer.steps):
            continue
        paths += [(("layers", i, "files", j, "dest"), f.dest) for j, f in enumerate(layer.files)]
        for j, step in enumerate(layer.steps):
            paths += [
                (("layers", i, "steps", j, "files", k, "dest"), f.dest)
                for k, f in enumerate(step.files)
            ]
    for where, path in paths:
        if path.startswith("/nix") and is_nix(path):
            yield nix_problem(locate, where, path)


def _mentions_nix(recipe: Recipe) -> bool:
    """A quick look first: almost no recipe names /nix."""
    paths = (
        *(f.dest for f in recipe.files),
        *(s.path for s in recipe.symlinks),
        *(d.path for d in recipe.directories),
        *(x.dest for x in recipe.downloads),
        *(f.dest for layer in recipe.layers if layer.files or layer.steps for f in layer.all_files),
    )
    return any(p.startswith("/nix") for p in paths)


def flatpaks(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    if recipe.flatpaks:
        yield _problem(
            locate,
            ("flatpaks",),
            "flatpaks-unsupported",
            "flatpaks cannot be part of a NestOS image: they install into /var/lib/flatpak, "
            "which a host never takes from an image, and NestOS (a server system) has no "
            "flatpak",
            "on a desktop image that has flatpak, ship a remote "
            "(/etc/flatpak/remotes.d/NAME.flatpakrepo) and a oneshot unit that runs "
            "`flatpak install --system --noninteractive REMOTE APP...` at boot "
            '(README, "Flatpaks")',
        )


RULES: tuple[Rule, ...] = (
    layer_steps,
    kernel_arguments,
    user_units,
    downloads,
    nix,
    flatpaks,
)
