"""Build recipes into images with podman; tag after success; push and learn the digest.

One recipe's build is: render -> context tar of exactly the files it COPYs ->
streamed podman build -> tag -> (push -> registry digest, checked against the
image we built). Several recipes build in parallel; podman's layer cache lets
them share common steps. A tag is only ever set on a finished image, and a
pushed reference is only reported once the registry serves our image under it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nestcustom import git
from nestcustom.containerfile.render import Rendering, Step, render_containerfile
from nestcustom.errors import NestcustomError
from nestcustom.image import registry
from nestcustom.image.podman import (
    BuildEvent,
    BuildFailed,
    ContextFile,
    Podman,
    build_context,
    split_reference,
)
from nestcustom.recipe.model import DEFAULT_TAG, Recipe


@dataclass(frozen=True)
class BuildOptions:
    tag_template: str = DEFAULT_TAG
    push: bool = False
    tls_verify: bool = True
    no_cache: bool = False


@dataclass(frozen=True)
class Built:
    """A finished build: what the user needs to test and deploy it."""

    name: str
    reference: str  # the tag that was set
    image_id: str
    digest: str | None  # manifest digest in the registry, when pushed
    size: int
    layers: int
    step_names: tuple[str, ...]
    step_seconds: tuple[float, ...]
    cached_steps: tuple[int, ...]
    seconds: float

    @property
    def pinned(self) -> str | None:
        """REF@sha256:... : what deploy takes."""
        if not self.digest:
            return None
        repository, _ = split_reference(self.reference)
        return f"{repository}@{self.digest}"


class RecipeBuildError(NestcustomError):
    """A recipe's build failed: names the recipe, its layer and the cause."""

    def __init__(
        self, name: str, message: str, hint: str | None = None, output: tuple[str, ...] = ()
    ):
        super().__init__(f"{name}: {message}", hint)
        self.name = name
        self.output = output


@dataclass(frozen=True)
class Outcome:
    name: str
    built: Built | None = None
    error: NestcustomError | None = None


Listener = Callable[[str, BuildEvent], None]


def tag_for(recipe: Recipe, template: str) -> str:
    return template.replace("{name}", recipe.name)


def context_files(
    recipe: Recipe, rendering: Rendering, project: Path, context_dir: str
) -> list[ContextFile]:
    """Exactly the files the Containerfile reads: itself, generated files, project files."""
    files = [ContextFile("Containerfile", rendering.containerfile.encode())]
    files += [ContextFile(f"{context_dir}/{f.name}", f.content.encode()) for f in rendering.files]
    for source in rendering.sources:
        try:
            content = (project / source).read_bytes()
        except OSError as exc:
            raise RecipeBuildError(recipe.name, f"cannot read {source}: {exc.strerror}") from exc
        files.append(ContextFile(source, content))
    return files


def build_labels(project: Path, now: datetime | None = None) -> dict[str, str]:
    """Labels only known at build time (the rest are rendered into the Containerfile)."""
    facts = git.provenance(project)
    # A clean checkout's commit time, not the clock: rebuilding the same revision then
    # gives the same labels, so the whole build comes from cache and is reproducible.
    clock = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {"org.opencontainers.image.created": facts.get("committed", clock)}
    if "source" in facts:
        labels["org.opencontainers.image.source"] = facts["source"]
    if "revision" in facts:
        labels["org.opencontainers.image.revision"] = facts["revision"]
    return labels


def build_one(
    podman: Podman,
    recipe: Recipe,
    project: Path,
    options: BuildOptions,
    listen: Listener,
    cancelled: threading.Event,
) -> Built:
    started = time.monotonic()
    context_dir = f"containerfiles/{recipe.name}"
    rendering = render_containerfile(recipe, context_dir)
    context = build_context(context_files(recipe, rendering, project, context_dir))
    labels = build_labels(project)
    try:
        result = podman.build(
            context,
            labels=labels,
            no_cache=options.no_cache,
            on_event=lambda event: listen(recipe.name, event),
        )
    except BuildFailed as exc:
        raise _explain_failure(recipe, rendering, exc) from exc
    if cancelled.is_set():
        raise RecipeBuildError(recipe.name, "interrupted before tagging; no tag was set")
    reference = tag_for(recipe, options.tag_template)
    podman.tag(result.image_id, reference)
    digest = None
    if options.push:
        podman.push(
            reference,
            tls_verify=options.tls_verify,
            on_line=lambda line: listen(recipe.name, BuildEvent(0, 0, line)),
        )
        digest, manifest = registry.manifest(reference, tls_verify=options.tls_verify)
        config = manifest.get("config")
        pushed_id = config.get("digest") if isinstance(config, dict) else None
        if pushed_id != f"sha256:{result.image_id}":
            raise RecipeBuildError(
                recipe.name,
                f"the registry serves another image under {reference} ({pushed_id}) than the one built",
                "another push to the same tag raced this one; build again",
            )
    attrs = podman.inspect(result.image_id)
    return Built(
        name=recipe.name,
        reference=reference,
        image_id=result.image_id,
        digest=digest,
        size=int(attrs.get("Size", 0)),
        layers=len(attrs.get("RootFS", {}).get("Layers", [])),
        # podman appends one LABEL step per build-time label.
        step_names=(*(s.name for s in rendering.steps), *(["build label"] * len(labels))),
        step_seconds=result.step_seconds,
        cached_steps=result.cached_steps,
        seconds=time.monotonic() - started,
    )


def _explain_failure(recipe: Recipe, rendering: Rendering, exc: BuildFailed) -> RecipeBuildError:
    """Name the step, where the recipe wrote it and which program failed."""
    number = exc.step or 0
    steps = rendering.steps
    step = steps[number - 1] if 0 < number <= len(steps) else Step("build")
    where = f" ({step.origin})" if step.origin else ""
    cause = exc.message
    if step.program:
        committing = any(line.startswith("Found file:") for line in exc.output)
        cause = f"{'ostree container commit' if committing else step.program}: {cause}"
    hint = None
    if "Found content in var" in cause:
        hint = "a package wrote to /var, which a NestOS host drops: relocate it or create it at boot (tmpfiles.d)"
    elif "Packages not found" in cause:
        hint = "check the package name and that a repo in the image (or the recipe's repos:) provides it"
    return RecipeBuildError(
        recipe.name,
        f"{step.name}{where} failed at step {number}/{exc.total or len(steps)}: {cause}",
        hint,
        exc.output,
    )


def build_all(
    podman: Podman,
    recipes: Sequence[Recipe],
    project: Path,
    options: BuildOptions,
    listen: Listener,
    jobs: int = 1,
) -> list[Outcome]:
    """Build every recipe (in parallel up to `jobs`); one failure does not stop the others."""
    names = [tag_for(r, options.tag_template) for r in recipes]
    if len(set(names)) != len(names):
        raise NestcustomError(
            "several recipes would get the same tag",
            "put {name} in --tag, e.g. registry/ns/{name}:latest",
        )
    cancelled = threading.Event()

    def one(recipe: Recipe) -> Outcome:
        try:
            return Outcome(
                recipe.name, built=build_one(podman, recipe, project, options, listen, cancelled)
            )
        except NestcustomError as exc:
            return Outcome(recipe.name, error=exc)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="build") as pool:
        futures = [pool.submit(one, recipe) for recipe in recipes]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            cancelled.set()
            for future in futures:
                future.cancel()
            podman.abort_streams()
            raise
