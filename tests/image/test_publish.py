"""Tagging and pushing, with podman and the registry replaced by recording fakes.

The behaviour a user relies on: a cancelled build sets no tag and pushes
nothing, and a pushed reference is reported only when the registry serves
the image that was built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image import publish as publish_module
from nestcustom.image import registry
from nestcustom.image.publish import StopFlag, Stopped, publish

BUILT = "a" * 64
OTHER = "b" * 64


class FakePodman:
    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.pushed: list[str] = []

    def tag(self, image_id: str, reference: str) -> None:
        self.tags[reference] = image_id

    def push(
        self,
        reference: str,
        *,
        tls_verify: bool = True,
        credentials: tuple[str, str] | None = None,
        on_line: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.pushed.append(reference)


@pytest.fixture(autouse=True)
def private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish_module, "LOCKS", tmp_path / "locks")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))


def serve(monkeypatch: pytest.MonkeyPatch, image_id: str) -> None:
    def served(reference: str, *, tls_verify: bool = True) -> registry.Served:
        return registry.Served("sha256:" + "d" * 64, image_id, {})

    monkeypatch.setattr(registry, "served", served)


def test_a_build_cancelled_before_tagging_sets_no_tag_and_pushes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(monkeypatch, BUILT)
    podman = FakePodman()
    stop = StopFlag()
    stop.stop()
    with pytest.raises(Stopped, match="no tag was set"):
        publish(
            podman,
            BUILT,
            "r/x:1",
            found=None,
            current=lambda: None,
            push=True,
            tls_verify=True,
            stop=stop,
        )
    assert podman.tags == {}
    assert podman.pushed == []


def test_a_stop_during_tagging_lets_the_tag_finish_and_pushes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(monkeypatch, BUILT)
    stop = StopFlag()
    stoppers: list[threading.Thread] = []

    class StoppedWhileTagging(FakePodman):
        def tag(self, image_id: str, reference: str) -> None:
            stoppers.append(threading.Thread(target=stop.stop))
            stoppers[0].start()
            stoppers[0].join(0.3)  # the stop waits: the tag holds the flag's lock
            assert not stop.stopped
            super().tag(image_id, reference)

    podman = StoppedWhileTagging()
    with pytest.raises(Stopped, match="nothing was pushed"):
        publish(
            podman,
            BUILT,
            "r/x:1",
            found=None,
            current=lambda: None,
            push=True,
            tls_verify=True,
            stop=stop,
        )
    stoppers[0].join(5)
    assert podman.tags == {"r/x:1": BUILT}  # the tag was under way when the stop came
    assert podman.pushed == []


def test_the_pushed_digest_is_reported_only_for_the_built_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(monkeypatch, BUILT)
    podman = FakePodman()
    digest = publish(
        podman,
        BUILT,
        "r/x:1",
        found=None,
        current=lambda: None,
        push=True,
        tls_verify=True,
        stop=StopFlag(),
    )
    assert digest == "sha256:" + "d" * 64
    assert podman.pushed == ["r/x:1"]


def test_a_registry_serving_another_image_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, OTHER)
    with pytest.raises(NestcustomError, match="registry serves another image under r/x:1"):
        publish(
            FakePodman(),
            BUILT,
            "r/x:1",
            found=None,
            current=lambda: None,
            push=True,
            tls_verify=True,
            stop=StopFlag(),
        )


def test_a_tag_moved_by_another_run_meanwhile_is_not_overwritten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(monkeypatch, BUILT)
    podman = FakePodman()
    with pytest.raises(NestcustomError, match="another build tagged r/x:1 while this one ran"):
        publish(
            podman,
            BUILT,
            "r/x:1",
            found=None,
            current=lambda: OTHER,
            push=True,
            tls_verify=True,
            stop=StopFlag(),
        )
    assert podman.tags == {}
    assert podman.pushed == []


def test_credentials_come_from_registry_auth_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nestcustom.image.auth import credentials_for

    auth = tmp_path / "auth.json"
    auth.write_text('{"auths": {"127.0.0.1:5000": {"auth": "dXNlcjpzM2NyZXQ="}}}')
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    found = credentials_for("127.0.0.1:5000/custom/x:v1")
    assert found is not None
    assert (found.username, found.password, found.source) == ("user", "s3cret", auth)
    assert credentials_for("other.example.com/custom/x:v1") is None
