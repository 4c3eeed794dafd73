"""Build recipes into images with podman; tag after success; push and learn the digest.

A run: inputs of every recipe (render, context, base ID, provenance) -> what is
already there (the tag locally, or in the registry, with the same input
digest: nothing to build) -> the rest built in parallel, recipes sharing first
steps building them once -> tag -> push -> the registry's digest, checked
against the image we built. The podman API service starts only when
something needs building or pushing.

Ctrl-C or SIGTERM: nothing new is tagged or pushed, the running steps are
killed (podman removes their working containers), the service we started is
stopped, and `proc.Interrupted` leaves with a line saying what was left.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nestcustom import proc
from nestcustom.containerfile.render import Rendering, Step, render_containerfile
from nestcustom.errors import NestcustomError
from nestcustom.image import registry
from nestcustom.image.context import build_context
from nestcustom.image.events import BuildEvent, BuildFailed, BuildResult, split_reference
from nestcustom.image.inputs import (
    LAYER_TIME,
    ImageInputs,
    context_dir,
    image_inputs,
    labels_match,
    provenance,
    step_keys,
)
from nestcustom.image.publish import StopFlag, claimed, publish, push_checked
from nestcustom.image.rechunk.step import rechunked
from nestcustom.image.schedule import run_sharing_prefixes
from nestcustom.image.secrets import BuildSecret, check_secrets, podman_secrets, secret_files
from nestcustom.image.signedpush import Attach, Pushed, publish_signed
from nestcustom.image.signing import Signer
from nestcustom.image.storage import LocalImage, local_images
from nestcustom.image.updatecost import TagLayers, UpdateCost
from nestcustom.recipe.model import DEFAULT_TAG, Recipe

if TYPE_CHECKING:
    from nestcustom.image.podman import Podman

Connect = Callable[[], contextlib.AbstractContextManager["Podman"]]
# (recipe name, image: containers-storage:ID or docker://REF@DIGEST, just built?); raises
# to refuse the image
Gate = Callable[[str, str, bool], None]


@dataclass(frozen=True)
class BuildOptions:
    tag_template: str = DEFAULT_TAG
    push: bool = False
    tls_verify: bool = True
    no_cache: bool = False
    step_timeout: float | None = None  # seconds; else the recipe's step-timeout:
    secrets: tuple[BuildSecret, ...] = ()  # build --secret: what steps with secret: read
    signer: Signer | None = None  # build --sign: push by digest, sign, then tag (signedpush.py)
    attach: Attach | None = None  # pushed next to the image before its tag is set (an SBOM)
    gate: Gate | None = None  # may refuse a built image before it is tagged (advisories)


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
    # Why no podman build ran: "" (one ran), "local" (the tag already names an image of
    # these inputs), "registry" (the registry serves one under the tag).
    up_to_date: str = ""
    # When pushed over an image the tag named: that image's digest, and what a host
    # running it downloads to move to this one (contract section 6).
    update_from: str | None = None
    update: UpdateCost | None = None

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


@dataclass(frozen=True)
class _Job:
    inputs: ImageInputs
    reference: str
    found: LocalImage | None  # what the tag named when the run started


def _default_connect() -> contextlib.AbstractContextManager[Podman]:
    from nestcustom.image.service import connect

    return connect()


def build_all(
    recipes: Sequence[Recipe],
    project: Path,
    options: BuildOptions,
    listen: Listener,
    jobs: int = 1,
    connect: Connect = _default_connect,
) -> list[Outcome]:
    """Build every recipe that needs it (in parallel up to `jobs`); one failure stops no other."""
    references = [tag_for(r, options.tag_template) for r in recipes]
    if len(set(references)) != len(references):
        raise NestcustomError(
            "several recipes would get the same tag",
            "put {name} in --tag, e.g. registry/ns/{name}:latest",
        )
    origin = provenance(project)
    check_secrets(recipes, options.secrets)
    renderings = [render_containerfile(r, context_dir(r)) for r in recipes]
    images = [ref for rendering in renderings for ref in rendering.images]
    # A build that must run needs podman-py (~0.1 s to import, with requests and rich):
    # imported while podman's CLI reads the local images, a subprocess that frees the GIL.
    preload = threading.Thread(target=importlib.import_module, args=("podman",), daemon=True)
    preload.start()
    local = local_images([*images, *references])
    image_ids = _image_ids(images, local, options.tls_verify)
    outcomes: dict[str, Outcome] = {}
    todo: list[_Job] = []
    for recipe, reference, rendering in zip(recipes, references, renderings, strict=True):
        try:
            inputs = image_inputs(recipe, project, image_ids, origin, rendering)
            job = _Job(inputs, reference, local.get(reference))
            # (the gate may refuse the image already at the tag)
            done = None if options.no_cache else _already_there(job, options)
        except NestcustomError as exc:
            outcomes[recipe.name] = Outcome(recipe.name, error=exc)
            continue
        if done is not None:
            outcomes[recipe.name] = Outcome(recipe.name, built=done)
        else:
            todo.append(job)
    if todo:
        with connect() as podman:
            for outcome in _run(podman, todo, options, listen, jobs):
                outcomes[outcome.name] = outcome
    return [outcomes[r.name] for r in recipes]


def _image_ids(
    images: Sequence[str], local: dict[str, LocalImage], tls_verify: bool
) -> dict[str, str]:
    """Each image's ID: from local storage, else from the registry (no pull)."""
    found = {}
    for reference in dict.fromkeys(images):
        if reference in local:
            found[reference] = local[reference].image_id
        else:
            found[reference] = registry.config_id(reference, tls_verify=tls_verify)
    return found


def _already_there(job: _Job, options: BuildOptions) -> Built | None:
    """A Built for an image of exactly these inputs under the tag, if there is one; the
    gate judges it as it would a new one (advisories come out after builds)."""
    here = job.found if job.found and labels_match(job.found.labels, job.inputs.digest) else None
    found, spec, served = None, "", None
    if options.push:  # a registry that cannot say: build, and let the push report it
        with contextlib.suppress(NestcustomError):
            served = registry.served(job.reference, tls_verify=options.tls_verify)
    same = served is not None and here and served.image_id == here.image_id.removeprefix("sha256:")
    if here and (not options.push or same):
        found = _skipped(job, here.image_id, served.digest if served else None, here, "local")
        spec = f"containers-storage:{here.image_id}"
    elif here is None and served and labels_match(served.labels, job.inputs.digest):
        found = _skipped(job, served.image_id, served.digest, None, "registry")
        spec = f"docker://{split_reference(job.reference)[0]}@{served.digest}"
    if found is not None and options.gate is not None:
        options.gate(job.inputs.recipe.name, spec, False)
    return _complete(found, options) if found and options.push else found


def _complete(built: Built, options: BuildOptions) -> Built:
    """An image already in the registry gets what this run adds: its signature (when the
    store has none by this key) and what goes next to it."""
    assert built.digest is not None
    signed = None
    if options.signer is not None:
        signed = options.signer.ensure(built.reference, built.digest, options.tls_verify)
    if options.attach is not None:
        options.attach(Pushed(built.reference, built.digest, built.image_id, signed))
    return built


def _skipped(
    job: _Job, image_id: str, digest: str | None, here: LocalImage | None, where: str
) -> Built:
    return Built(
        job.inputs.recipe.name,
        job.reference,
        image_id,
        digest,
        here.size if here else 0,
        here.layers if here else 0,
        (),
        (),
        (),
        0.0,
        up_to_date=where,
    )


def _run(
    podman: Podman, todo: list[_Job], options: BuildOptions, listen: Listener, jobs: int
) -> list[Outcome]:
    stop = StopFlag()

    def work(index: int, on_step: Callable[[int], None]) -> Outcome:
        job = todo[index]
        name = job.inputs.recipe.name

        def relay(event: BuildEvent) -> None:
            if event.starts_step:
                on_step(event.step)
            listen(name, event)

        try:
            return Outcome(name, built=build_one(podman, job, options, relay, stop))
        except NestcustomError as exc:
            return Outcome(name, error=exc)

    try:
        results = run_sharing_prefixes([step_keys(j.inputs) for j in todo], jobs, work)
    except KeyboardInterrupt as exc:
        stop.stop()
        with _second_signal_hurries() as hurry:
            stopped = podman.stop_builds(hurry=hurry)
        signum = exc.signum if isinstance(exc, proc.Interrupted) else 2
        left = (
            ""
            if stopped
            else "; podman was still writing a layer: its working container may remain"
        )
        raise proc.Interrupted(signum, f"the build stopped; {stop.left()}{left}") from exc
    return [  # an exception that is not a project error is a bug: say it, keep the others
        r
        if isinstance(r, Outcome)
        else Outcome(
            job.inputs.recipe.name,
            error=NestcustomError(f"internal error: {type(r).__name__}: {r}", "please report it"),
        )
        for job, r in zip(todo, results, strict=True)
    ]


@contextlib.contextmanager
def _second_signal_hurries() -> Iterator[threading.Event]:
    """While the builds stop, another SIGINT or SIGTERM cuts the wait short (set the event).

    Raising at once instead would stop the service before podman removed the
    killed step's working container.
    """
    hurry = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hurry  # signals reach the main thread only
        return
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: hurry.set()) for s in stop_signals}
    try:
        yield hurry
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def build_one(
    podman: Podman,
    job: _Job,
    options: BuildOptions,
    listen: Callable[[BuildEvent], None],
    stop: StopFlag,
) -> Built:
    started = time.monotonic()
    inputs = job.inputs
    recipe = inputs.recipe
    if job.found and labels_match(job.found.labels, inputs.digest) and not options.no_cache:
        image_id = job.found.image_id  # built before: only the push is missing
        seconds: tuple[float, ...] = ()
        cached: tuple[int, ...] = ()
        digest: str | None
        if options.gate is not None:
            options.gate(recipe.name, f"containers-storage:{image_id}", True)
        previous = _before_push(job, options)
        if options.signer is not None or options.attach is not None:
            digest = _publish_signed(podman, job, image_id, options, stop, listen)
        else:
            digest = push_checked(
                podman,
                image_id,
                job.reference,
                options.tls_verify,
                stop,
                lambda line: listen(BuildEvent(0, 0, line)),
            )
    else:
        try:
            # The secrets travel with the context only for podman (image/secrets.py): the
            # inputs digest is over the context without them.
            context = build_context([*inputs.files, *secret_files(recipe, options.secrets)])
            result = _build_past_storage_race(
                lambda: podman.build(
                    context,
                    no_cache=options.no_cache,
                    timestamp=LAYER_TIME,
                    step_timeout=options.step_timeout or recipe.step_timeout,
                    secrets=podman_secrets(recipe, options.secrets),
                    on_event=listen,
                ),
                listen,
                stop,
            )
        except BuildFailed as exc:
            if stop.stopped:
                raise RecipeBuildError(recipe.name, "interrupted; no tag was set") from exc
            raise _explain_failure(recipe, inputs.rendering, exc) from exc
        image_id, seconds, cached = result.image_id, result.step_seconds, result.cached_steps
        if recipe.rechunk is not None:
            image_id = rechunked(podman, recipe, image_id, listen, lambda: stop.stopped)
        if options.gate is not None:
            options.gate(recipe.name, f"containers-storage:{image_id}", True)
        previous = _before_push(job, options)
        if options.push and (options.signer is not None or options.attach is not None):
            digest = _publish_signed(podman, job, image_id, options, stop, listen)
        else:
            digest = publish(
                podman,
                image_id,
                job.reference,
                found=job.found.image_id if job.found else None,
                current=lambda: _current(podman, job.reference),
                push=options.push,
                tls_verify=options.tls_verify,
                stop=stop,
                on_line=lambda line: listen(BuildEvent(0, 0, line)),
            )
    attrs = podman.inspect(image_id)
    update = registry.update_since(previous, job.reference, digest, tls_verify=options.tls_verify)
    return Built(
        name=recipe.name,
        reference=job.reference,
        image_id=image_id,
        digest=digest,
        size=int(attrs.get("Size", 0)),
        layers=len(attrs.get("RootFS", {}).get("Layers", [])),
        step_names=tuple(s.name for s in inputs.rendering.steps),
        step_seconds=seconds,
        cached_steps=cached,
        seconds=time.monotonic() - started,
        update_from=previous.digest if previous and update else None,
        update=update,
    )


def _before_push(job: _Job, options: BuildOptions) -> TagLayers | None:
    """What hosts run now, read once the image is ready and before the push moves the tag."""
    if not options.push:
        return None
    return registry.layers_before_push(job.reference, tls_verify=options.tls_verify)


def _publish_signed(
    podman: Podman,
    job: _Job,
    image_id: str,
    options: BuildOptions,
    stop: StopFlag,
    listen: Callable[[BuildEvent], None],
) -> str:
    with claimed(
        job.reference,
        image_id,
        job.found.image_id if job.found else None,
        lambda: _current(podman, job.reference),
    ):
        return publish_signed(
            podman,
            image_id,
            job.reference,
            signer=options.signer,
            attach=options.attach,
            tls_verify=options.tls_verify,
            stop=stop,
            on_line=lambda line: listen(BuildEvent(0, 0, line)),
        )


# What podman 4.3 answers when another process removes images while a build looks up its
# layer cache (the build fails at once; a full test run met it): one more try meets a
# settled storage.
STORAGE_RACES = ("layer not known", "image not known")


def _build_past_storage_race(
    build: Callable[[], BuildResult], listen: Callable[[BuildEvent], None], stop: StopFlag
) -> BuildResult:
    """`build()`, run once more (and said so) when it lost a race in podman's storage."""
    try:
        return build()
    except BuildFailed as exc:
        if stop.stopped or not any(race in exc.message for race in STORAGE_RACES):
            raise
        listen(
            BuildEvent(
                0,
                0,
                f"podman's storage changed under the build ({exc.message}): another process "
                "removed images meanwhile; building once more",
            )
        )
        return build()


def _current(podman: Podman, reference: str) -> str | None:
    if not podman.exists(reference):
        return None
    return str(podman.inspect(reference)["Id"])


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
        layer = next((x for x in recipe.layers if f"layer {x.name}" == step.name), None)
        writer = (
            "a command or script of this layer (or a package it installed)"
            if layer is not None and (layer.run or layer.scripts)
            else "a package"
        )
        hint = (
            f"{writer} wrote to /var, which a NestOS host drops: write it under /usr or /etc, "
            "or create it at boot (tmpfiles.d)"
        )
    elif "the step timeout" in cause:
        hint = "raise build --step-timeout (or the recipe's step-timeout:), or find what the step waits for"
    elif "Packages not found" in cause:
        hint = "check the package name and that a repo in the image (or the recipe's repos:) provides it"
    return RecipeBuildError(
        recipe.name,
        f"{step.name}{where} failed at step {number}/{exc.total or len(steps)}: {cause}",
        hint,
        exc.output,
    )
