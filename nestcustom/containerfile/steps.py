"""The RUN steps of a recipe: its layers, its builder stages, kernel modules, checks.

A step is a list of commands and the bind mounts they need: scripts and module
files from the project or a stage, the build helper, the facts of the base.
Nothing is pasted into the Containerfile but quoted arguments; scripts and the
helper arrive as read-only bind mounts and never land in the image.

Build-time values: those known from the recipe are substituted here; the rest
(`{{kernel}}`, `{{os.version}}`, ...) make the command run through the build
helper, which reads them from the image and fills them in, with no shell.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from posixpath import basename

from nestcustom.containerfile.commands import (
    COMMIT,
    HELPER,
    REMOVE_CACHE,
    Command,
    content_path,
    dnf_package_commands,
    nestos_package_commands,
    stage_package_commands,
)
from nestcustom.containerfile.repofile import repo_file
from nestcustom.containerfile.stepargs import (
    bind,
    copies,
    copy_args,
    initramfs_args,
    layer_parts,
    selinux_parts,
)
from nestcustom.recipe import values
from nestcustom.recipe.model import Flavor, Layer, Recipe

HELPER_FILE = "nestcustom-build.sh"  # shared: one copy beside the recipes' directories
FACTS_STAGE = "nestcustom-facts"
FACTS_DIR = "/nestcustom-facts"
BASE_MOUNT = "/run/nestcustom/base"
# Kernel modules built in a stage are COPYed here, installed by the kernel step, and
# removed by it. Not bind-mounted from the stage: podman 4.3 mounts an empty tree for
# `--mount from=STAGE` when that stage came from the layer cache (podman#16281), and
# reuses the RUN's cache when the stage changed (buildah#4522). COPY --from is
# checksummed. The staged copy costs one small layer.
KMOD_STAGING = "/usr/lib/nestcustom-kmods"
# A layer's RPM files from stages and images: gathered in a stage of their own
# (render.rpm_stage), mounted here in the layer's step.
RPMS_MOUNT = "/run/nestcustom/rpms"
RPMS_STAGE = "nestcustom-rpms-{index}"


@dataclass(frozen=True)
class RunStep:
    commands: tuple[Command, ...]
    mounts: tuple[str, ...] = ()
    uses_helper: bool = False
    sources: tuple[str, ...] = ()  # project files its mounts read from the build context
    generated: tuple[tuple[str, str], ...] = ()  # (name, text) of files it mounts that we write


def context_path(directory: str, name: str) -> str:
    """A file's path in the build context (the project), `directory` being project-relative."""
    return f"{directory}/{name}" if directory else name


def secret_mount(secret: str) -> str:
    """A build secret in a RUN step: at /run/secrets/ID for that step only (podman build)."""
    return f"--mount=type=secret,id={secret}"


def secret_path(secret: str) -> str:
    return f"/run/secrets/{secret}"


class StepWriter:
    """Writes the RUN steps of one recipe; `context_dir` is where its generated files live."""

    def __init__(self, recipe: Recipe, context_dir: str, helper_source: str) -> None:
        self.recipe = recipe
        self.context_dir = context_dir
        self.helper_source = helper_source  # the build helper's path in the build context
        self.nestos = recipe.base.flavor is Flavor.NESTOS

    def in_context(self, name: str) -> str:
        """Where a file nestcustom writes for this recipe is in the build context."""
        return context_path(self.context_dir, name)

    # -- values ---------------------------------------------------------------------------

    def fill(self, text: str) -> str:
        return values.substitute_known(text, self.recipe)

    def filled(self, command: Command) -> tuple[Command, bool]:
        """(the command with known values filled in, whether the build must fill the rest)."""
        args = tuple(self.fill(a) for a in command.args)
        verb = tuple(self.fill(a) for a in command.verb)
        late = any(values.needs_build(a) for a in (*verb, *args))
        return Command(verb, args, command.rpms), late

    # -- layers ---------------------------------------------------------------------------

    def layer(self, layer: Layer, stage_manager: str | None = None, index: int = 0) -> RunStep:
        """One layer of the image (stage_manager None) or of a builder stage; `index`: its
        place in the recipe's layers (names the stage its RPM files are gathered in)."""
        rpms = RPMS_MOUNT if layer.local_rpms and stage_manager is None else ""
        if stage_manager is not None:
            packages = stage_package_commands(layer, stage_manager)
        elif self.nestos:
            packages = nestos_package_commands(layer, rpms)
        else:
            packages = dnf_package_commands(layer, rpms)
        own = layer_parts(layer, self.nestos)
        mounts = own.mounts
        if rpms:
            mounts.append(bind("/nestcustom-rpms", RPMS_MOUNT, RPMS_STAGE.format(index=index)))
        commands: list[Command] = []
        uses_helper = False
        for command in (*packages, *own.commands):
            done, late = self.filled(command)
            if stage_manager is None and self.nestos and command.verb[0] == "rpm-ostree":
                commands.append(done.clamped())  # fills values too; see Command.clamped
                uses_helper = True
                continue
            commands.append(done.through_helper() if late or done.rpms else done)
            uses_helper = (
                uses_helper or late or bool(done.rpms) or command.verb[:2] == ("sh", HELPER)
            )
        generated: list[tuple[str, str]] = []
        if layer.repos and stage_manager is None:
            plain = tuple(r for r in layer.repos if r.secret is None)
            if plain:
                # Mounted into /etc/yum.repos.d for this step only: used, never in the image.
                name, text = f"layer-{layer.name}.repo", repo_file(self.recipe.path, plain)
                digest = hashlib.sha256(text.encode()).hexdigest()[:16]
                target = f"/etc/yum.repos.d/nestcustom-{layer.name}-{digest}.repo"
                mounts.append(bind(self.in_context(name), target))
                generated.append((name, text))
            before, after = self._secret_repos(layer, mounts, generated)
            commands[:0] = before
            commands += after
            uses_helper = uses_helper or bool(before)
        if stage_manager is None and self.nestos:
            if layer.changes_packages or any(s.kind == "initramfs" for s in layer.steps):
                commands.append(REMOVE_CACHE)
            commands.append(COMMIT)
        elif stage_manager is None and layer.changes_packages:
            commands.append(Command(("dnf", "clean", "all")))
        if uses_helper:
            mounts.insert(0, bind(self.helper_source, HELPER))
        mounted = tuple(dict.fromkeys(mounts))  # one secret may serve several repos
        sources = tuple(dict.fromkeys(own.sources))
        return RunStep(tuple(commands), mounted, uses_helper, sources, tuple(generated))

    def _secret_repos(
        self, layer: Layer, mounts: list[str], generated: list[tuple[str, str]]
    ) -> tuple[list[Command], list[Command]]:
        """(commands before, after) the layer's own for its repos that need credentials.

        Each repo's file (no credentials: it is committed in containerfiles/) is
        mounted aside; the build helper writes it with the build secret's USER:PASSWORD
        into /etc/yum.repos.d before the package changes and the step removes it before
        its commit, so the credentials never reach a layer.
        """
        before, after = [], []
        for repo in (r for r in layer.repos if r.secret is not None):
            assert repo.secret is not None
            name = f"layer-{layer.name}-{repo.id}.repo"
            text = repo_file(self.recipe.path, (repo,))
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            source = f"/run/nestcustom/repos/{digest}/{repo.id}.repo"
            target = f"/etc/yum.repos.d/nestcustom-{layer.name}-{repo.id}-{digest}.repo"
            mounts += [bind(self.in_context(name), source), secret_mount(repo.secret)]
            generated.append((name, text))
            before.append(
                Command(("sh", HELPER, "repo-auth"), (source, secret_path(repo.secret), target))
            )
            after.append(Command(("rm", "-f"), (target,)))
        return before, after

    def early(self) -> RunStep | None:
        """Before the layers: signing keys in place, base repos enabled or disabled."""
        recipe = self.recipe
        if not recipe.has_early_step:
            return None
        mounts = [bind(self.helper_source, HELPER)]
        commands = []
        if recipe.keys or recipe.repo_files:
            args: list[str] = []
            for key in recipe.keys:
                target = content_path("/run/nestcustom/files", key.sha256, basename(key.src))
                mounts.append(bind(key.src, target))
                args += ["--copy", target, key.dest, key.mode, "-"]
            for repo in recipe.repo_files:
                args += ["--fetch", repo.url, repo.sha256, repo.dest, "0644", "-"]
            commands.append(Command(("sh", HELPER, "files"), tuple(args)))
        if recipe.base_repos_enable or recipe.base_repos_disable:
            args = []
            for repo_id in recipe.base_repos_enable:
                args += ["--enable", repo_id]
            for repo_id in recipe.base_repos_disable:
                args += ["--disable", repo_id]
            commands.append(Command(("sh", HELPER, "repos"), tuple(args)))
        if self.nestos:
            commands.append(COMMIT)
        return RunStep(tuple(commands), tuple(mounts), True, tuple(k.src for k in recipe.keys))

    def needs_facts_stage(self) -> bool:
        """Whether a builder stage uses a value only the base image can tell."""
        return any(
            self.layer(layer, stage.packages).uses_helper
            for stage in self.recipe.stages
            for layer in stage.layers
        )

    def facts(self) -> RunStep:
        command = Command(("sh", HELPER, "facts"), (FACTS_DIR,))
        return RunStep((command,), (bind(self.helper_source, HELPER),), True)

    # -- kernel modules and the initramfs -------------------------------------------------

    def staged_modules(self) -> list[tuple[str, str, str]]:
        """(stage, path there, staging path) of each kernel module a stage built."""
        return [
            (m.stage, m.src, f"{KMOD_STAGING}/{index}/{basename(m.src)}")
            for index, m in enumerate(self.recipe.kernel_modules)
            if m.stage is not None and m.src is not None
        ]

    def kernel(self) -> RunStep | None:
        recipe = self.recipe
        modules, initramfs = recipe.kernel_modules, recipe.initramfs
        if not modules and not initramfs.regenerate:
            return None
        mounts = [bind(self.helper_source, HELPER)]
        commands = []
        if modules:
            args: list[str] = ["--conf", recipe.name]
            for index, module in enumerate(modules):
                if module.src is not None and module.stage is not None:
                    staged = f"{KMOD_STAGING}/{index}/{basename(module.src)}"
                    args += ["--install", module.name, staged]
                elif module.src is not None:
                    target = content_path(
                        "/run/nestcustom/kmod", module.sha256 or str(index), basename(module.src)
                    )
                    mounts.append(bind(module.src, target))
                    args += ["--install", module.name, target]
                if module.load:
                    args += ["--load", module.name]
                if module.options:
                    args += ["--options", module.name, self.fill(module.options)]
            commands.append(Command(("sh", HELPER, "kmods"), tuple(args)))
            if self.staged_modules():
                commands.append(Command(("rm", "-rf"), (KMOD_STAGING,)))
        if initramfs.regenerate:
            commands.append(Command(("sh", HELPER, "initramfs"), initramfs_args(initramfs)))
        commands += [REMOVE_CACHE, COMMIT]
        sources = tuple(m.src for m in modules if m.src is not None and m.stage is None)
        return RunStep(tuple(commands), tuple(mounts), True, sources)

    # -- files, links, directories, removals, users ------------------------------------------

    def files(self, generated: tuple[tuple[str, str, str, str], ...] = ()) -> RunStep | None:
        """One step for every project file and tree, drop-in, signing key, removal,
        directory, download, link and edit: one layer however many there are (each COPY
        would be a layer of its own, and a NestOS base leaves room for about 60).
        `generated`: (context path, sha256, dest, mode) of files nestcustom writes, such as
        the sysusers.d fragment, policy.json and the updater's scripts."""
        recipe = self.recipe
        if not recipe.has_files_step:
            return None
        mounts = [bind(self.helper_source, HELPER)]
        args: list[str] = []
        for path in recipe.removals:
            args += ["--remove", path]
        for directory in recipe.directories:
            args += ["--dir", directory.path, directory.mode]
        items = copies((*recipe.files, *recipe.dropins))
        items += [
            (s.key.src, s.key.sha256, s.key.dest, "0644", None, False)
            for s in recipe.signing.scopes
        ]
        items += [(src, sha, dest, mode, None, False) for src, sha, dest, mode in generated]
        more_mounts, more_args, sources = copy_args(items)
        mounts += more_mounts
        args += more_args
        for download in recipe.downloads:
            extract = "extract" if download.extract else "gunzip" if download.decompress else "-"
            fetch = ["--fetch"]
            if download.secret is not None:
                fetch = ["--fetch-auth", secret_path(download.secret)]
                mounts.append(secret_mount(download.secret))
            args += [*fetch, download.url, download.sha256, download.dest, download.mode, extract]
        for link in recipe.symlinks:
            args += ["--link", link.path, link.target]
        for edit in recipe.edits:  # last: a copied file may be edited too
            for key, value in edit.values:
                args += ["--set", edit.file, edit.section or "-", key, value]
        commands = [Command(("sh", HELPER, "files"), tuple(args))]
        if self.nestos:
            commands.append(COMMIT)
        ours = {item[0] for item in generated}  # written by nestcustom, not project files
        return RunStep(
            tuple(commands),
            tuple(dict.fromkeys(mounts)),  # one secret may serve several downloads
            True,
            tuple(s for s in sources if s not in ours),
        )

    # -- SELinux ----------------------------------------------------------------------------

    def selinux(self) -> RunStep | None:
        """The selinux: section's step: modules, then booleans, in the image's policy store."""
        selinux = self.recipe.selinux
        if not selinux.is_set:
            return None
        parts = selinux_parts(selinux, self.nestos)
        commands = parts.commands + ([COMMIT] if self.nestos else [])
        mounts = [bind(self.helper_source, HELPER), *parts.mounts]
        return RunStep(tuple(commands), tuple(mounts), True, tuple(parts.sources))

    # -- checks -----------------------------------------------------------------------------

    def checks(self) -> RunStep | None:
        checks = self.recipe.checks
        host_rules = checks.host_rules and self.nestos
        if not (host_rules or checks.packages or checks.files or checks.commands):
            return None
        mounts = [bind(self.helper_source, HELPER)]
        args: list[str] = []
        if host_rules:
            # The base, read-only: what it already holds is not the recipe's doing.
            mounts.append(bind("/", BASE_MOUNT, self.recipe.base.reference))
            args += ["--host-rules", "--base", BASE_MOUNT]
        for name in checks.packages:
            args += ["--package", name]
        for path in checks.files:
            args += ["--file", path]
        commands = [Command(("sh", HELPER, "check"), tuple(args))]
        for argv in checks.commands:
            done, late = self.filled(Command((argv[0],), tuple(argv[1:])))
            commands.append(done.through_helper() if late else done)
        if self.nestos:
            commands.append(COMMIT)
        return RunStep(tuple(commands), tuple(mounts), True)
