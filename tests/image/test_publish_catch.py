"""A push to a registry the user logged in to carries the login from the auth file."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nestcustom.image import publish as publish_module
from nestcustom.image import registry
from nestcustom.image.publish import StopFlag, push_checked

BUILT = "a" * 64


class RecordingPodman:
    """podman's push, as publishing calls it: records the credentials it was given."""

    def __init__(self) -> None:
        self.credentials: list[tuple[str, str] | None] = []

    def tag(self, image_id: str, reference: str) -> None:
        raise AssertionError("push_checked does not tag")

    def push(
        self,
        reference: str,
        *,
        tls_verify: bool = True,
        credentials: tuple[str, str] | None = None,
        on_line: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.credentials.append(credentials)


@pytest.fixture
def serves_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish_module, "LOCKS", tmp_path / "locks")

    def served(reference: str, *, tls_verify: bool = True) -> registry.Served:
        return registry.Served("sha256:" + "d" * 64, BUILT, {})

    monkeypatch.setattr(registry, "served", served)


def test_the_push_carries_the_login_of_the_auth_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serves_built: None
) -> None:
    auth = tmp_path / "auth.json"
    token = base64.b64encode(b"builder:s3cret").decode()
    auth.write_text(json.dumps({"auths": {"reg.example.com": {"auth": token}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    podman = RecordingPodman()
    digest = push_checked(
        podman, BUILT, "reg.example.com/ns/img:1", True, StopFlag(), lambda line: None
    )
    assert digest == "sha256:" + "d" * 64
    assert podman.credentials == [("builder", "s3cret")]
    push_checked(podman, BUILT, "other.example.com/ns/img:1", True, StopFlag(), lambda line: None)
    assert podman.credentials[-1] is None
