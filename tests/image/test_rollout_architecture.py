"""deploy's architecture check, from the image's config in a real registry (read by real
skopeo): an image built for another architecture than the host's is refused before the
host is touched, naming both in `uname -m` terms; a matching one is not."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from nestcustom.deploy.decide import DriverChoice, preflight_refusal
from nestcustom.deploy.target import resolve_target
from tests.deploy.test_decisions import BASE, one, status_json
from tests.image.pushing import HttpPodman, image_id
from tests.universe.registry import Registry, run_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def pushed(registry: Registry, architecture: str) -> str:
    """REGISTRY/arch:ARCHITECTURE, a bootable image whose config says `architecture`."""
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Labels": {"ostree.bootable": "true"}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    reference = f"{registry.host}/arch:{architecture}"
    HttpPodman(config).push(image_id(config), destination=reference)
    return reference


@pytest.mark.parametrize(
    ("architecture", "refusal"),
    [
        ("arm64", "the host is x86_64, the image is for aarch64"),  # Go's name, uname's word
        ("ppc64le", "the host is x86_64, the image is for ppc64le"),  # same in both: as is
        ("amd64", None),
    ],
)
def test_an_image_for_another_architecture_is_refused_naming_both(
    registry: Registry, architecture: str, refusal: str | None
) -> None:
    target = resolve_target(pushed(registry, architecture), signed=False, tls_verify=False)
    x86_host = one(status_json(BASE), arch="x86_64")
    refused = preflight_refusal(x86_host, target.arch, DriverChoice())
    assert (refused.message if refused else None) == refusal
