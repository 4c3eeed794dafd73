"""Before building: which steps re-run and which stay cached, and why.

The comparison is between content keys, never guesses. The recipe's inputs
now (rendered Containerfile, context files, base image ID) are set against
the inputs the image under comparison was built from: the project at the
commit its `org.opencontainers.image.revision` label names, rendered again.
That reconstruction is checked with the image's own `io.nestcustom.inputs`
digest (the digest `build` uses to skip a build with no change), so a plan
never rests on a wrong guess of the past: when the digests differ (a dirty
tree, another nestcustom version, another base), the plan says so.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import NestcustomError, RecipeError
from nestcustom.gitops.imagefacts import ImageFacts, image_facts
from nestcustom.gitops.stepkeys import BASE, StepKey, step_keys
from nestcustom.image import registry
from nestcustom.image.inputs import (
    INPUTS_LABEL,
    REVISION,
    Provenance,
    context_dir,
    image_inputs,
    input_digest,
    project_files,
)
from nestcustom.image.storage import local_images
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Recipe

NO_PROVENANCE = Provenance((), None)


@dataclass(frozen=True)
class PlannedStep:
    index: int
    name: str
    cached: bool
    reason: str  # why it re-runs ("" when cached)


@dataclass(frozen=True)
class BuildPlan:
    recipe: str
    against: str | None  # the image compared with, None when there is none
    digest: str  # the inputs digest of a build now
    up_to_date: bool  # the image was built from exactly these inputs: build skips
    steps: tuple[PlannedStep, ...]
    note: str = ""  # what limits the comparison, if anything

    @property
    def rerun(self) -> int:
        return sum(not s.cached for s in self.steps)


def image_ids(images: tuple[str, ...], tls_verify: bool) -> dict[str, str]:
    """The ID of every image a rendering names, as `build` takes them (its `_image_ids`):
    local storage first, else the registry's config digest (no pull)."""
    local = local_images(images)
    return {
        reference: local[reference].image_id
        if reference in local
        else registry.config_id(reference, tls_verify=tls_verify)
        for reference in dict.fromkeys(images)
    }


def plan_build(recipe: Recipe, project: Path, against: str, tls_verify: bool = True) -> BuildPlan:
    rendering = render_containerfile(recipe, context_dir(recipe))
    ids = image_ids(rendering.images, tls_verify)
    now = image_inputs(recipe, project, ids, NO_PROVENANCE, rendering)
    keys = step_keys(now, ids)
    image = image_facts(against, tls_verify)
    if image is None:
        steps = tuple(PlannedStep(k.index, k.name, False, f"no image {against}") for k in keys)
        return BuildPlan(recipe.path, None, now.digest, False, steps, f"{against} does not exist")
    if image.labels.get(INPUTS_LABEL) == now.digest:
        steps = tuple(PlannedStep(k.index, k.name, True, "") for k in keys)
        return BuildPlan(recipe.path, against, now.digest, True, steps)
    before, note = _inputs_at_build(recipe, project, image, ids, tls_verify)
    if before is None:
        steps = tuple(PlannedStep(k.index, k.name, False, note) for k in keys)
        return BuildPlan(recipe.path, against, now.digest, False, steps, note)
    return BuildPlan(recipe.path, against, now.digest, False, compare(before, keys), note)


def compare(before: list[StepKey], after: list[StepKey]) -> tuple[PlannedStep, ...]:
    """Cached: same key, every earlier step of its chain cached, every stage it uses cached."""
    old = {(k.chain, position): k for position, k in _positions(before)}
    rerun_chains: dict[str, str] = {}  # chain -> the step that first changed in it
    planned = []
    for position, key in _positions(after):
        previous = old.get((key.chain, position))
        reason = _why(previous, key)
        # The labels name the commit, so they change whenever anything does: an earlier
        # step that re-runs is the better reason.
        if key.chain in rerun_chains and (not reason or key.name == "labels"):
            reason = f"after {rerun_chains[key.chain]}, which re-runs"
        if not reason:
            changed = [s for s in key.uses if s in rerun_chains]
            if changed:
                reason = f"uses stage {changed[0]}, which re-runs"
        if reason:
            rerun_chains.setdefault(key.chain, key.name)
        planned.append(PlannedStep(key.index, key.name, not reason, reason))
    return tuple(planned)


def _positions(keys: list[StepKey]) -> list[tuple[int, StepKey]]:
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key.chain] = seen.get(key.chain, -1) + 1
        out.append((seen[key.chain], key))
    return out


def _why(previous: StepKey | None, key: StepKey) -> str:
    if previous is None:
        return "a new step"
    if previous.key == key.key:
        return ""
    old = dict(previous.files)
    changed = [p for p, h in key.files if old.get(p) != h]
    if BASE in changed:
        return "the base image changed"
    images = [p.removeprefix("image ") for p in changed if p.startswith("image ")]
    if images:
        return f"the image {images[0]} changed"
    # A file's content comes first: mounted files are mounted at a path named by their
    # content, so the instruction changes with them and would hide the real reason.
    if previous.instruction != key.instruction and not changed:
        if key.name == "labels":  # they name the commit and the inputs digest
            return "the labels changed (revision, inputs digest)"
        return "its instruction changed" + (
            f" (was {previous.name})" if previous.name != key.name else ""
        )
    return f"content of {', '.join(changed)} changed" if changed else "its inputs changed"


def _inputs_at_build(
    recipe: Recipe, project: Path, image: ImageFacts, ids: dict[str, str], tls_verify: bool
) -> tuple[list[StepKey] | None, str]:
    """The step keys of the build that made `image`, from the commit it names; and a note."""
    revision = image.labels.get(REVISION, "")
    commit = revision.removesuffix("-dirty")
    if not commit:
        return None, f"{image.reference} has no {REVISION} label: its inputs are unknown"
    with tempfile.TemporaryDirectory(prefix="nestcustom-plan-") as tmp:
        old_project = _checkout(project, commit, Path(tmp))
        if old_project is None:
            return None, f"commit {commit[:12]} (the image's revision) is not in this repository"
        try:
            old = load_recipe(old_project / recipe.path, old_project).recipe
        except (RecipeError, NestcustomError):
            return None, f"{recipe.path} at {commit[:12]} does not load"
        rendering = render_containerfile(old, context_dir(old))
        files = project_files(old, rendering, old_project)
        old_ids = {ref: ids.get(ref, "unknown") for ref in rendering.images}
        old_ids[old.base.reference] = _base_of(
            image, old.base.reference, ids.get(old.base.reference, "unknown"), tls_verify
        )
        rebuilt = image_inputs(old, old_project, old_ids, NO_PROVENANCE, rendering)
    keys = step_keys(rebuilt, old_ids)
    note = ""
    if input_digest(rendering, files, old_ids) != image.labels.get(INPUTS_LABEL):
        note = (
            f"the inputs rebuilt from {revision[:19]} do not match the image's digest "
            "(a dirty tree, another nestcustom version or another base): steps marked "
            "cached may re-run"
        )
    return keys, note


def _base_of(image: ImageFacts, reference: str, current: str, tls_verify: bool) -> str:
    """The ID of the base `image` was built on, if `reference` names it still: its layers and
    its history (a LABEL or ENV adds an entry, not a layer) begin the image's; else "unknown".
    """
    try:
        facts = image_facts(reference, tls_verify)
    except NestcustomError:
        facts = None
    if facts is None or not facts.diff_ids:
        return "unknown"
    if image.diff_ids[: len(facts.diff_ids)] != facts.diff_ids:
        return "unknown"
    if image.history[: len(facts.history)] != facts.history:
        return "unknown"
    return facts.image_id if facts.image_id else current


def _checkout(project: Path, commit: str, into: Path) -> Path | None:
    """The project's files at `commit`, extracted under `into`; None if git cannot give them."""
    top = proc.run(
        ["git", "-C", str(project), "rev-parse", "--show-toplevel"], check=False, timeout=30
    )
    if top.returncode != 0:
        return None
    root = Path(top.stdout.strip()).resolve()
    prefix = project.resolve().relative_to(root).as_posix()
    argv = ["git", "-C", str(root), "archive", "--format=tar", commit]
    if prefix != ".":
        argv.append(prefix)
    done = proc.run(argv, check=False, timeout=300)
    if done.returncode != 0:
        return None
    with tarfile.open(fileobj=io.BytesIO(done.raw_stdout)) as archive:
        archive.extractall(into, filter="data")
    return into if prefix == "." else into / prefix
