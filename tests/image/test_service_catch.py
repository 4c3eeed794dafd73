"""A CONTAINER_HOST socket that does not exist is refused clearly, without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.image.podman import PodmanUnavailable
from nestcustom.image.service import connect


def test_a_container_host_socket_that_is_not_there_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"unix://{tmp_path}/podman.sock"
    monkeypatch.setenv("CONTAINER_HOST", url)
    with pytest.raises(PodmanUnavailable) as caught, connect():
        pass
    assert caught.value.message == f"no podman API answers at CONTAINER_HOST={url}"
    assert caught.value.hint == (
        "start it (podman system service), or unset CONTAINER_HOST to let nestcustom start one"
    )
