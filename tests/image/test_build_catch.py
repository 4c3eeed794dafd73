"""What a build run reports when nothing needs building, when only the push is missing,
when one build has a bug, and when it is stopped by SIGTERM. A real registry, skopeo and
gpg; podman's push done by HTTP (tests/image/pushing.py), so no podman."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.image.build import (
    BuildOptions,
    Built,
    _already_there,
    _Job,
    _run,
)
from nestcustom.image.events import BuildEvent
from nestcustom.image.inputs import INPUTS_LABEL, ImageInputs, image_inputs, provenance
from nestcustom.image.signedpush import Pushed
from nestcustom.image.signing import SignOptions, signing_session
from nestcustom.image.storage import LocalImage
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe
from tests.image.pushing import HttpPodman, image_config, image_id
from tests.image.signkeys import make_key
from tests.universe.registry import Registry, run_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(autouse=True)
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    monkeypatch.setattr("nestcustom.image.publish.LOCKS", tmp_path / "locks")


def inputs_of(write_recipe: WriteRecipe, project: Path, name: str = "r") -> ImageInputs:
    recipe = load_recipe(
        write_recipe(
            f"name: {name}\nbase: {{image: {BASE}}}\nfiles: [{{src: files/motd, dest: /etc/motd}}]\n",
            name=name,
        )
    ).recipe
    return image_inputs(recipe, project, {BASE: "0" * 64}, provenance(project))


class Attached:
    """What goes next to an image (an SBOM, in a real run): here, what it was given."""

    def __init__(self) -> None:
        self.pushed: list[Pushed] = []

    def prepare(self, image_id: str) -> None:
        pass

    def __call__(self, pushed: Pushed) -> None:
        self.pushed.append(pushed)


class BuildPodman(HttpPodman):
    """Also what a build run asks of podman besides pushing: an image's size and layers,
    and stopping the builds."""

    def __init__(self, *configs: bytes) -> None:
        super().__init__(*configs)
        self.stopped = threading.Event()
        self.unreadable: set[str] = set()  # image IDs whose inspect hits a bug

    def inspect(self, image_id: str) -> dict[str, Any]:
        if image_id not in self.images or image_id in self.unreadable:
            raise KeyError(image_id)  # a bug: no project error for it
        return {"Size": 4096, "RootFS": {"Layers": ["sha256:" + "1" * 64]}}

    def stop_builds(self, wait: float = 30.0, hurry: threading.Event | None = None) -> bool:
        self.stopped.set()
        return True


def test_an_image_the_registry_serves_for_these_inputs_is_signed_not_built(
    registry: Registry, write_recipe: WriteRecipe, project: Path, tmp_path: Path
) -> None:
    inputs = inputs_of(write_recipe, project)
    config = image_config({INPUTS_LABEL: inputs.digest})
    reference = f"{registry.host}/nc/there:1"
    HttpPodman(config).push(image_id(config), destination=reference)
    key, fingerprint = make_key(tmp_path / "key", "nc <nc@nc.invalid>")
    attached = Attached()
    with signing_session(SignOptions(key, store=f"file://{tmp_path}/store")) as signer:
        options = BuildOptions(push=True, tls_verify=False, signer=signer, attach=attached)
        built = _already_there(_Job(inputs, reference, None), options)
    assert built is not None
    digest = built.digest
    assert built == Built(
        "r", reference, image_id(config), digest, 0, 0, (), (), (), 0.0, up_to_date="registry"
    )
    assert digest is not None
    [pushed] = attached.pushed
    assert (pushed.reference, pushed.digest, pushed.image_id) == (
        reference,
        digest,
        image_id(config),
    )
    assert pushed.signed is not None
    assert (pushed.signed.identity, pushed.signed.fingerprint) == (reference, fingerprint)
    signature = tmp_path / "store" / f"nc/there@sha256={digest.removeprefix('sha256:')}"
    assert pushed.signed.url == f"file://{signature}/signature-1"


def test_the_gate_judges_the_image_the_registry_already_serves_by_digest(
    registry: Registry, write_recipe: WriteRecipe, project: Path
) -> None:
    inputs = inputs_of(write_recipe, project)
    config = image_config({INPUTS_LABEL: inputs.digest})
    reference = f"{registry.host}/nc/gated:1"
    HttpPodman(config).push(image_id(config), destination=reference)
    judged: list[tuple[str, str, bool]] = []
    options = BuildOptions(push=True, tls_verify=False, gate=lambda *a: judged.append(a))
    built = _already_there(_Job(inputs, reference, None), options)
    assert built is not None and built.up_to_date == "registry"
    # by digest without the tag (skopeo refuses tag@digest), and not as a fresh build
    assert judged == [("r", f"docker://{registry.host}/nc/gated@{built.digest}", False)]

    def refuse(recipe: str, spec: str, fresh: bool) -> None:
        raise NestcustomError("exposed")

    with pytest.raises(NestcustomError, match="exposed"):
        _already_there(
            _Job(inputs, reference, None), BuildOptions(push=True, tls_verify=False, gate=refuse)
        )


def test_an_image_built_before_gets_only_its_push(
    registry: Registry, write_recipe: WriteRecipe, project: Path
) -> None:
    inputs = inputs_of(write_recipe, project)
    config = image_config({INPUTS_LABEL: inputs.digest})
    podman = BuildPodman(config)
    reference = f"{registry.host}/nc/push-only:1"
    found = LocalImage(image_id(config), {INPUTS_LABEL: inputs.digest}, (reference,))
    podman.tag(image_id(config), reference)  # built by an earlier run, pushed by none
    events: list[tuple[str, BuildEvent]] = []
    [outcome] = _run(
        podman,  # type: ignore[arg-type]
        [_Job(inputs, reference, found)],
        BuildOptions(push=True, tls_verify=False),
        lambda name, event: events.append((name, event)),
        1,
    )
    assert outcome.error is None
    built = outcome.built
    assert built is not None
    assert (built.reference, built.image_id, built.size, built.layers) == (
        reference,
        image_id(config),
        4096,
        1,
    )
    assert built.digest is not None and built.digest.startswith("sha256:")
    assert registry.tags("nc/push-only") == ["1"]
    assert events == [("r", BuildEvent(0, 0, "Writing manifest to image destination 1"))]


def test_a_bug_in_one_build_is_an_internal_error_and_the_others_finish(
    registry: Registry, write_recipe: WriteRecipe, project: Path
) -> None:
    good, bad = inputs_of(write_recipe, project, "good"), inputs_of(write_recipe, project, "bad")
    configs = {i.recipe.name: image_config({INPUTS_LABEL: i.digest}) for i in (good, bad)}
    podman = BuildPodman(configs["good"])
    podman.images[image_id(configs["bad"])] = configs["bad"]

    def job(inputs: ImageInputs) -> _Job:
        config = configs[inputs.recipe.name]
        reference = f"{registry.host}/nc/{inputs.recipe.name}:1"
        podman.tag(image_id(config), reference)
        return _Job(
            inputs, reference, LocalImage(image_id(config), {INPUTS_LABEL: inputs.digest}, ())
        )

    broken = image_id(configs["bad"])
    podman.unreadable.add(broken)
    outcomes = _run(
        podman,  # type: ignore[arg-type]
        [job(good), job(bad)],
        BuildOptions(push=True, tls_verify=False),
        lambda name, event: None,
        2,
    )
    assert [(o.name, o.built is not None) for o in outcomes] == [("good", True), ("bad", False)]
    error = outcomes[1].error
    assert error is not None
    assert (error.message, error.hint) == (
        f"internal error: KeyError: '{broken}'",
        "please report it",
    )


@pytest.fixture
def stop_signals_raise() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    proc.raise_on_stop_signals()
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_sigterm_during_a_build_stops_it_and_exits_as_sigterm(
    registry: Registry, write_recipe: WriteRecipe, project: Path, stop_signals_raise: None
) -> None:
    inputs = inputs_of(write_recipe, project)
    config = image_config({INPUTS_LABEL: inputs.digest})
    podman = BuildPodman(config)

    def terminated_while_pushing() -> None:  # the CI runner cancels the job
        os.kill(os.getpid(), signal.SIGTERM)
        podman.stopped.wait(10)

    podman.on_push = terminated_while_pushing
    found = LocalImage(image_id(config), {INPUTS_LABEL: inputs.digest}, ())
    reference = f"{registry.host}/nc/stopped:1"
    podman.tag(image_id(config), reference)
    with pytest.raises(proc.Interrupted) as caught:
        _run(
            podman,  # type: ignore[arg-type]
            [_Job(inputs, reference, found)],
            BuildOptions(push=True, tls_verify=False),
            lambda name, event: None,
            1,
        )
    assert caught.value.signum == signal.SIGTERM
    assert caught.value.state == "the build stopped; no tag was set, nothing was pushed"
    assert podman.stopped.is_set()
