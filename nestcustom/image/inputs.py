"""What an image is made of, and the digest that names it before it is built.

An image's inputs are the rendered Containerfile, the files of its build
context, the base image (by ID, not by tag) and the nestcustom version. Their
digest is written into the image as a label; when an image with the same
digest is already under the tag (locally or in the registry), nothing needs
building. `input_digest` is the stage's function for that, for `build` and
for anything that plans builds.

Labels known only at build time (provenance) join the rendered Containerfile's
closing LABEL instruction, in a fixed order: podman's own `labels` option adds
one step per label in no fixed order, which made the image ID a coin toss, and
a LABEL of their own would be one more step to commit in every cold build.
The `created` label is the commit's time; the layers' and the config's times are
`LAYER_TIME`; neither is the clock.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nestcustom import __version__, git
from nestcustom.containerfile.render import (
    Rendering,
    image_labels,
    label_line,
    render_containerfile,
)
from nestcustom.errors import NestcustomError
from nestcustom.image.context import ContextFile, build_context
from nestcustom.recipe.model import Recipe

# The time podman writes into every new layer (each file's time) and as the image's and
# its steps' created time (`podman build --timestamp`). A constant, not the commit's time:
# podman 4.3's layer cache matches a step by its instruction and parent only (buildah 1.28
# historyAndDiffIDsMatch), so a step cached at an earlier commit would carry that commit's
# time, and differ from a cold build of this one. 0 is also what a NestOS host keeps:
# ostree stores no file times (every deployed file has mtime 0, OSTREE_TIMESTAMP) and
# stamps the commit it imports with its own clock (contract section 1, "Times").
LAYER_TIME = 0

INPUTS_LABEL = "io.nestcustom.inputs"
CREATED = "org.opencontainers.image.created"
REVISION = "org.opencontainers.image.revision"
SOURCE = "org.opencontainers.image.source"


@dataclass(frozen=True)
class Provenance:
    """Where the project's files come from: the same for every recipe of a run."""

    labels: tuple[tuple[str, str], ...]  # created, revision, source (those known)
    epoch: int | None  # the commit's time: the created label


def provenance(project: Path) -> Provenance:
    """The commit's facts; without git, SOURCE_DATE_EPOCH (else no time at all)."""
    facts = git.provenance(project)
    epoch = int(facts["epoch"]) if "epoch" in facts else None
    if epoch is None and (source_date := os.environ.get("SOURCE_DATE_EPOCH", "").strip()):
        if not source_date.isdigit():
            raise NestcustomError(
                f"SOURCE_DATE_EPOCH={source_date!r} is not a number of seconds",
                "set it to a Unix time, e.g. $(git log -1 --format=%ct)",
            )
        epoch = int(source_date)
    labels = {}
    if epoch is not None:
        labels[CREATED] = git.iso_time(epoch)
    if "revision" in facts:
        labels[REVISION] = facts["revision"]
    if "source" in facts:
        labels[SOURCE] = facts["source"]
    return Provenance(tuple(sorted(labels.items())), epoch)


@dataclass(frozen=True)
class ImageInputs:
    """Everything one recipe's build reads, and the digest of it."""

    recipe: Recipe
    rendering: Rendering
    files: tuple[ContextFile, ...]  # the context; its Containerfile's LABEL has the build labels
    labels: tuple[tuple[str, str], ...]  # the build-time labels, in their fixed order
    digest: str  # INPUTS_LABEL's value

    @property
    def context(self) -> bytes:
        return build_context(list(self.files))

    @property
    def containerfile(self) -> str:
        return self.files[0].content.decode()


def context_dir(recipe: Recipe) -> str:
    return f"containerfiles/{recipe.name}"


def project_files(recipe: Recipe, rendering: Rendering, project: Path) -> list[ContextFile]:
    """The files the Containerfile copies: generated ones and the project's own."""
    files = [ContextFile(f.path, f.content.encode()) for f in rendering.files]
    for source in rendering.sources:
        try:
            files += _context_entries(project, source)
        except OSError as exc:
            raise NestcustomError(
                f"{recipe.name}: cannot read {source}: {exc.strerror}",
                "the recipe's files: are relative to the project root",
            ) from exc
    return files


def _context_entries(project: Path, source: str) -> list[ContextFile]:
    """A project file, or a directory with its whole tree (links as links, empty
    directories kept, the executable bit kept: a tree is copied with its modes)."""
    top = project / source
    if not top.is_dir():
        return [ContextFile(source, top.read_bytes(), _mode(top))]
    entries = [ContextFile(source, b"", 0o755, "dir")]
    for path in sorted(top.rglob("*")):
        name = f"{source}/{path.relative_to(top).as_posix()}"
        if path.is_symlink():
            entries.append(ContextFile(name, b"", 0o777, "link", str(path.readlink())))
        elif path.is_dir():
            entries.append(ContextFile(name, b"", 0o755, "dir"))
        else:
            entries.append(ContextFile(name, path.read_bytes(), _mode(path)))
    return entries


def _mode(path: Path) -> int:
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def input_digest(
    rendering: Rendering,
    files: list[ContextFile],
    image_ids: Mapping[str, str],
    version: str = __version__,
) -> str:
    """sha256 over the Containerfile, the context's files, the IDs of the images it builds
    from (base, builder stages, images files come from) and our version.

    The Containerfile holds the recipe digest (a label) and every instruction, so
    this changes exactly when a build could give another image.
    """
    canonical = json.dumps(
        {
            "nestcustom": version,
            "images": [[ref, image_ids[ref]] for ref in rendering.images],
            "containerfile": rendering.containerfile,
            "files": sorted(
                (f.path, f.mode, f.kind, f.target, hashlib.sha256(f.content).hexdigest())
                for f in files
            ),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def image_inputs(
    recipe: Recipe,
    project: Path,
    image_ids: Mapping[str, str],
    origin: Provenance,
    rendering: Rendering | None = None,
) -> ImageInputs:
    """Gather `recipe`'s context (rendering it unless given), with the build labels added.

    `image_ids` maps every image the rendering names (`Rendering.images`) to its ID.
    """
    rendering = rendering or render_containerfile(recipe, context_dir(recipe))
    files = project_files(recipe, rendering, project)
    digest = input_digest(rendering, files, image_ids)
    labels = tuple(sorted((*origin.labels, (INPUTS_LABEL, digest))))
    containerfile = with_build_labels(rendering.containerfile, recipe, labels)
    return ImageInputs(
        recipe,
        rendering,
        (ContextFile("Containerfile", containerfile.encode()), *files),
        labels,
        digest,
    )


def with_build_labels(
    containerfile: str, recipe: Recipe, labels: tuple[tuple[str, str], ...]
) -> str:
    """The rendered Containerfile with `labels` added to its closing LABEL instruction."""
    rendered = label_line(image_labels(recipe))
    head, found, tail = containerfile.rpartition("\n" + rendered)
    if not found or tail.strip():  # rendering always ends with the recipe's labels
        raise NestcustomError(f"internal error: {recipe.name}'s Containerfile ends unexpectedly")
    return head + "\n" + label_line((*image_labels(recipe), *labels)) + "\n"


def step_keys(inputs: ImageInputs) -> list[str]:
    """One key per podman step, equal when podman's layer cache would treat them as equal.

    FROM is keyed by the base ID; an instruction by its text, and a COPY also by the
    content of what it copies.
    """
    content = {f.path: hashlib.sha256(f.content).hexdigest()[:16] for f in inputs.files}
    keys = []
    for instruction in instructions(inputs.containerfile):
        if instruction.startswith("COPY "):
            copied = [
                h for path, h in content.items() if path != "Containerfile" and path in instruction
            ]
            instruction += " " + " ".join(copied)
        keys.append(instruction)
    return keys


def instructions(containerfile: str) -> list[str]:
    """The instructions of a Containerfile: comments gone, continued lines joined."""
    found: list[str] = []
    current = ""
    for line in containerfile.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + "\n"
            continue
        found.append(current + line)
        current = ""
    return found


def labels_match(labels: Mapping[str, str] | None, digest: str) -> bool:
    return bool(labels) and labels is not None and labels.get(INPUTS_LABEL) == digest
