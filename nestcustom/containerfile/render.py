"""Recipe -> Containerfile text (and the generated files it COPYs). Pure and deterministic.

The shape follows the NestOS manual: one RUN per layer, ending in
`&& rm -rf /var/cache && ostree container commit` for rpm-ostree bases,
e.g. `RUN rpm-ostree install strace && rm -rf /var/cache && ostree container commit`.
Every argument that came from a recipe passes through `shlex.quote`; package
lists are de-duplicated and sorted so reordering a list changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from posixpath import basename, dirname

from nestcustom.containerfile import signing
from nestcustom.containerfile.commands import (
    COMMIT,
    HELPER,
    Command,
    helper_text,
    run_line,
    sorted_set,
)
from nestcustom.containerfile.generated import (
    GENERATED_MARK,
    KARGS_LABEL,
    SYSUSERS_FILE,
    kargs_label,
    more_files,
    render_sysusers,
    sysusers_file,
)
from nestcustom.containerfile.repofile import repo_file
from nestcustom.containerfile.stepargs import bind
from nestcustom.containerfile.steps import (
    FACTS_DIR,
    FACTS_STAGE,
    HELPER_FILE,
    RPMS_STAGE,
    RunStep,
    StepWriter,
    context_path,
)
from nestcustom.containerfile.updater import enabled_units, updater_files
from nestcustom.recipe.model import Flavor, Recipe

__all__ = ["GENERATED_MARK", "SYSUSERS_FILE", "render_containerfile", "render_sysusers"]

REPO_FILE = "nestcustom.repo"
RPMS_DIR = "/nestcustom-rpms"  # in a layer's RPM stage: the files, one directory per source
RPM_LISTS = "/usr/share/nestcustom/rpms"  # in the image: LAYER.list, what the layer installed
_COPY_SAFE = re.compile(r"^[A-Za-z0-9._+@=,:%~/-]+$")


@dataclass(frozen=True)
class GeneratedFile:
    path: str  # in the build context, the project: e.g. containerfiles/NAME/nestcustom.repo
    content: str

    @property
    def name(self) -> str:
        return basename(self.path)


@dataclass(frozen=True)
class Step:
    """One instruction of the Containerfile as a user knows it: podman only numbers them."""

    name: str  # "base", "repos", "layer NAME", "file DEST", "units", "labels"
    origin: str = ""  # FILE:LINE:COL where the recipe wrote it, when it is one item
    program: str = ""  # what runs in it, to name in a failure ("rpm-ostree", "dnf")
    stage: str = ""  # the builder stage it belongs to; "" for the image itself


@dataclass(frozen=True)
class Rendering:
    containerfile: str
    files: tuple[GeneratedFile, ...] = ()
    steps: tuple[Step, ...] = ()  # in order, one per instruction that podman counts
    # Project files the Containerfile COPYs (relative to the project root, the build
    # context): exactly what the context must hold besides the generated files.
    sources: tuple[str, ...] = ()
    # Every image it builds from or copies out of (base first): what a build must
    # identify by ID to know whether anything changed.
    images: tuple[str, ...] = ()


def render_containerfile(
    recipe: Recipe, context_dir: str, shared_dir: str | None = None
) -> Rendering:
    """Render `recipe`; `context_dir` is where the output lives, relative to the project root.

    The project root is the build context, so COPY sources are project-relative.
    Files every recipe shares (the build helper) live in `shared_dir`, by default
    the parent of `context_dir` (containerfiles/, beside the recipes' directories),
    so that a GitOps repository holds, and reviews, one copy.
    The order: builder stages, then the image: repos, layers, kernel modules and
    the initramfs, files, SELinux, units, the build's checks, labels.
    """
    out = _Writer(recipe, context_dir, shared_dir)
    out.header()
    out.stages()
    out.line(f"FROM {recipe.base.reference}")
    out.step(Step("base"))
    if recipe.repos:
        out.generated(REPO_FILE, repo_file(recipe.path, recipe.repos))
        target = f"/etc/yum.repos.d/nestcustom-{recipe.name}.repo"
        out.block(_copy(out.context_path(REPO_FILE), target, "0644"), Step("repos"))
    early = out.steps_of.early()
    if early is not None:
        out.run(early, "# signing keys and base repos, before the layers that need them")
        out.step(Step("keys and repos", program="nestcustom files"))
    for index, layer in enumerate(recipe.layers):
        step = out.steps_of.layer(layer, index=index)
        program = ("rpm-ostree" if out.nestos else "dnf") if layer.changes_packages else ""
        if layer.runs_programs:
            program = ""
        if layer.local_rpms:
            # What the layer installs from stages and images, listed by its RPM stage: a
            # COPY is checksummed, so a changed RPM re-runs the layer (podman 4.3 keys a
            # RUN's cache on its text, --mount from a stage included: buildah#4522).
            stage = RPMS_STAGE.format(index=index)
            dest = f"{RPM_LISTS}/{layer.name}.list"
            out.block(
                _copy(f"{RPMS_DIR}/list", dest, "0644", stage), Step(f"rpm list {layer.name}")
            )
        out.run(step, _comment("layer", layer.name, layer.description))
        out.step(Step(f"layer {layer.name}", layer.origin, program))
    kernel = out.steps_of.kernel()
    if kernel is not None:
        out.line("")
        out.line("# kernel modules and initramfs")
        for stage, source, staged in out.steps_of.staged_modules():
            out.line(_copy(source, staged, "0644", stage))
            out.step(Step(f"kernel module {source} from {stage}"))
        out.run(kernel)
        out.step(Step("kernel modules", program="nestcustom kernel modules"))
    # Out of a stage or image (COPY --from), or a file podman mounts over the image's in
    # a RUN (RUN_MOUNTED_FILES): one COPY layer each.
    copied = [spec for spec in recipe.files if spec.source is not None or spec.copied_alone]
    if copied:
        out.line("")
        for spec in copied:
            out.line(_copy(spec.src, spec.dest, spec.mode, spec.source, spec.owner))
            out.step(Step(f"file {spec.dest}"))
            if spec.source is None:
                out.sources.append(spec.src)
    generated = [(n, t, d, "0644") for n, t, d in sysusers_file(recipe)]
    if recipe.signing.scopes:
        generated += [
            (signing.POLICY_FILE, signing.policy_json(recipe), signing.POLICY_DEST, "0644"),
            (
                signing.REGISTRIES_FILE,
                signing.registries_yaml(recipe),
                signing.registries_dest(recipe),
                "0644",
            ),
        ]
    generated += [(n, t, d, "0644") for n, t, d in more_files(recipe)]
    generated += updater_files(recipe)
    installed = []
    for name, text, dest, mode in generated:
        out.generated(name, text)
        digest = hashlib.sha256(text.encode()).hexdigest()
        installed.append((out.context_path(name), digest, dest, mode))
    files = out.steps_of.files(tuple(installed))
    if files is not None:
        out.run(files, "# files, links, directories and users")
        out.step(Step("files", program="nestcustom files"))
    selinux = out.steps_of.selinux()
    if selinux is not None:
        out.run(selinux, "# SELinux: policy modules and booleans, in the image's policy store")
        out.step(Step("selinux", program="nestcustom selinux"))
    units = unit_commands(recipe)
    if units:
        out.run(RunStep(tuple([*units, COMMIT] if out.nestos else units)))
        out.step(Step("units", program="systemctl"))
    checks = out.steps_of.checks()
    if checks is not None:
        out.run(checks, "# checks: what a host would drop or refuse, and the recipe's own")
        out.step(Step("checks", program="nestcustom checks"))
    out.block(label_line(image_labels(recipe)), Step("labels"))
    return out.rendering()


class _Writer:
    """Collects lines, steps, generated files and project sources while rendering."""

    def __init__(self, recipe: Recipe, context_dir: str, shared_dir: str | None) -> None:
        self.recipe = recipe
        self.context_dir = context_dir if context_dir not in ("", ".") else ""
        shared = dirname(self.context_dir) if shared_dir is None else shared_dir
        helper = context_path(shared if shared not in ("", ".") else "", HELPER_FILE)
        self.nestos = recipe.base.flavor is Flavor.NESTOS
        self.steps_of = StepWriter(recipe, self.context_dir, helper)
        self.lines: list[str] = []
        self.steps: list[Step] = []
        self.files: list[GeneratedFile] = []
        self.sources: list[str] = []
        self.helper = False

    def context_path(self, name: str) -> str:
        return context_path(self.context_dir, name)

    def header(self) -> None:
        self.lines += [
            f"# Generated by nestcustom from {self.recipe.path}. Do not edit:",
            "# change the recipe and run `nestcustom render --all`.",
        ]

    def line(self, text: str) -> None:
        self.lines.append(text)

    def block(self, text: str, step: Step) -> None:
        self.lines += ["", text]
        self.step(step)

    def step(self, step: Step) -> None:
        self.steps.append(step)

    def generated(self, name: str, text: str) -> None:
        """A file written for this recipe, beside its Containerfile."""
        self.files.append(GeneratedFile(self.context_path(name), text))

    def run(self, step: RunStep, comment: str | None = None) -> None:
        self.lines += ["", *([comment] if comment else []), run_line(step.commands, step.mounts)]
        self.helper = self.helper or step.uses_helper
        self.sources += step.sources
        for name, text in step.generated:
            self.generated(name, text)

    def stages(self) -> None:
        recipe = self.recipe
        if recipe.stages and self.steps_of.needs_facts_stage():
            self.line(f"FROM {recipe.base.reference} AS {FACTS_STAGE}")
            self.step(Step(f"stage {FACTS_STAGE}", stage=FACTS_STAGE))
            self.run(self.steps_of.facts(), "# the base image's values, for the stages below")
            self.step(Step("facts", stage=FACTS_STAGE, program="nestcustom facts"))
            self.line("")
        for stage in recipe.stages:
            self.line(f"# stage {stage.name}")
            self.line(f"FROM {stage.image} AS {stage.name}")
            self.step(Step(f"stage {stage.name}", stage.origin, stage=stage.name))
            for spec in stage.files:
                # a directory's files keep their modes (buildah's --chmod sets every one)
                mode = None if spec.tree else spec.mode
                self.line(_copy(spec.src, spec.dest, mode, spec.source, spec.owner))
                self.step(Step(f"stage {stage.name} file {spec.dest}", stage=stage.name))
                if spec.source is None:
                    self.sources.append(spec.src)
            if any(self.steps_of.layer(la, stage.packages).uses_helper for la in stage.layers):
                # The base's values, for the helper (COPY, not a bind mount: see KMOD_STAGING).
                self.line(f"COPY --from={FACTS_STAGE} {FACTS_DIR} {FACTS_DIR}")
                self.step(Step(f"stage {stage.name} facts", stage=stage.name))
            for layer in stage.layers:
                step = self.steps_of.layer(layer, stage.packages)
                self.run(step, _comment("layer", layer.name, layer.description))
                name = f"stage {stage.name} layer {layer.name}"
                self.step(Step(name, layer.origin, stage=stage.name))
            self.line("")
        for index, layer in enumerate(recipe.layers):
            if layer.local_rpms:
                self.rpm_stage(index)

    def rpm_stage(self, index: int) -> None:
        """The stage that gathers a layer's RPM files from stages and images (COPY --from,
        checksummed) and lists them (sha256, NEVRA, path) with the base's rpm; the layer
        mounts it. Being COPYed from (the list), buildah 1.28 keeps its working container at
        its last, even cached, step (imagebuildah/executor.go rootfsMap), so the mount sees
        its files; a stage only mounted would show its state before cached steps
        (podman#16281)."""
        layer = self.recipe.layers[index]
        stage = RPMS_STAGE.format(index=index)
        self.line(f"# RPM files for layer {layer.name}")
        self.line(f"FROM {self.recipe.base.reference} AS {stage}")
        self.step(Step(f"stage {stage}", layer.origin, stage=stage))
        for number, rpms in enumerate(layer.local_rpms):
            self.line(_copy(rpms.path, f"{RPMS_DIR}/{number}/", "0644", rpms.source))
            self.step(Step(f"stage {stage} rpms {rpms.source}:{rpms.path}", stage=stage))
        command = Command(("sh", HELPER, "rpm-list"), (RPMS_DIR,))
        self.run(RunStep((command,), (bind(self.steps_of.helper_source, HELPER),), True))
        self.step(Step(f"stage {stage} list", stage=stage, program="nestcustom rpm-list"))
        self.line("")

    def rendering(self) -> Rendering:
        if self.helper:
            self.files.append(GeneratedFile(self.steps_of.helper_source, build_helper()))
        recipe = self.recipe
        images = [
            recipe.base.reference,
            *(stage.image for stage in recipe.stages),
            *(f.source for f in recipe.files if f.source and "/" in f.source),
            *(f.source for s in recipe.stages for f in s.files if f.source and "/" in f.source),
            *(r.source for la in recipe.layers for r in la.local_rpms if "/" in r.source),
        ]
        return Rendering(
            "\n".join(self.lines) + "\n",
            tuple(self.files),
            tuple(self.steps),
            tuple(dict.fromkeys(self.sources)),
            tuple(dict.fromkeys(images)),
        )


def unit_commands(recipe: Recipe) -> list[Command]:
    """Offline systemctl calls: unmask before enable, mask last (a mask wins)."""
    more = recipe.units
    commands: list[Command] = []
    for verb, names in (
        (("systemctl", "unmask"), more.unmask),
        (("systemctl", "enable"), (*recipe.units_enable, *enabled_units(recipe))),
        (("systemctl", "disable"), recipe.units_disable),
        (
            ("systemctl", "--global", "enable"),
            (*more.user_enable, *(u for e in recipe.user_units for u in e.enable)),
        ),
        (("systemctl", "--global", "disable"), more.user_disable),
        (("systemctl", "preset"), more.preset),
        (("systemctl", "mask"), more.mask),
    ):
        if names:
            commands.append(Command(verb, sorted_set(names)))
    if more.default_target:
        commands.append(Command(("systemctl", "set-default"), (more.default_target,)))
    return commands


def build_helper() -> str:
    """The build helper's text (package data, fixed code), marked as generated."""
    return f"{GENERATED_MARK} (its build helper; run with sh). Do not edit.\n{helper_text()}"


def _comment(kind: str, name: str, description: str) -> str:
    return _one_line(f"# {kind} {name}" + (f": {description}" if description else ""))


def image_labels(recipe: Recipe) -> list[tuple[str, str]]:
    """Labels known at render time; the build adds created, revision and source."""
    labels = [
        ("org.opencontainers.image.title", recipe.name),
        ("org.opencontainers.image.description", recipe.description),
        ("org.opencontainers.image.base.name", recipe.base.image),
        ("org.opencontainers.image.base.digest", recipe.base.digest or ""),
        ("io.nestcustom.recipe", recipe.path),
        ("io.nestcustom.recipe.digest", recipe.digest),
        (signing.LABEL, signing.signing_label(recipe)),
        (KARGS_LABEL, kargs_label(recipe)),
    ]
    own = dict(recipe.labels)
    return [(k, v) for k, v in labels if v and k not in own] + sorted(own.items())


def label_line(labels: Iterable[tuple[str, str]]) -> str:
    entries = [f"{key}={_label_value(value)}" for key, value in labels]
    return "LABEL " + " \\\n      ".join(entries)


def _label_value(value: str) -> str:
    # LABEL values are double-quoted with backslash escapes, and `$` would expand.
    return json.dumps(value, ensure_ascii=False).replace("$", "\\$")


def _copy(
    source: str, dest: str, mode: str | None, origin: str | None = None, owner: str | None = None
) -> str:
    words = ["COPY"]
    if origin:
        words.append(f"--from={origin}")
    if mode:  # none for a directory: its files keep their own modes
        words.append(f"--chmod={mode}")
    if owner:
        words.append(f"--chown={owner}")
    if _COPY_SAFE.match(source) and _COPY_SAFE.match(dest):
        return " ".join([*words, source, dest])
    return " ".join([*words, json.dumps([source, dest], ensure_ascii=False)])


def _one_line(text: str) -> str:
    return " ".join(text.split())
