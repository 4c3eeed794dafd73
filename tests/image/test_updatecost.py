"""What `build --push` says a host on the tag's previous image downloads: the pushed
image's layers the previous one lacks, by compressed digest (contract section 6), read
from a real registry before and after the push."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image import registry
from nestcustom.image.distribution import Repository
from nestcustom.image.updatecost import TagLayers, UpdateCost, layers_to_fetch, manifest_layers
from tests.image.pushing import layer, push_layers
from tests.universe.registry import Registry, run_registry

BASE = [layer({"usr/lib/os-release": b"NAME=NestOS\n"}), layer({"usr/bin/base": b"b" * 3000})]
TOOLS = layer({"usr/bin/strace": b"s" * 5000})
AGENT = layer({"usr/bin/agent": b"a" * 2000})


@pytest.fixture(scope="module")
def registry_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def test_a_host_fetches_the_layers_it_does_not_hold() -> None:
    new = [("sha256:a", 10), ("sha256:b", 200), ("sha256:c", 3000)]
    assert layers_to_fetch(["sha256:a", "sha256:x"], new) == UpdateCost(2, 3, 3200)
    assert layers_to_fetch([d for d, _ in new], new) == UpdateCost(0, 3, 0)
    assert layers_to_fetch([], new) == UpdateCost(3, 3, 3210)


@pytest.mark.parametrize(
    ("document", "layers"),
    [
        ({"layers": [{"digest": "sha256:a", "size": 5}, {"digest": "sha256:b"}]},
         [("sha256:a", 5), ("sha256:b", 0)]),
        ({"manifests": [{"digest": "sha256:a"}]}, None),  # an index
        ({"layers": [{"size": 5}]}, None),
        ({"layers": "sha256:a"}, None),
        (["layers"], None),
    ],
)  # fmt: skip
def test_only_an_image_manifest_has_a_layer_list(
    document: object, layers: list[tuple[str, int]] | None
) -> None:
    assert manifest_layers(document) == layers


def test_served_layers_are_the_tags_manifest_now(registry_up: Registry) -> None:
    pushed = push_layers(registry_up, "nc/cost", "v1", [*BASE, TOOLS], {})
    served = registry.served_layers(pushed.reference, tls_verify=False)
    manifest, _ = Repository(f"{registry_up.host}/nc/cost", tls_verify=False).manifest("v1")
    assert served == TagLayers(
        "sha256:" + hashlib.sha256(manifest).hexdigest(),
        tuple(zip(pushed.layers, pushed.sizes, strict=True)),
    )
    assert registry.served_layers(f"{registry_up.host}/nc/cost:none", tls_verify=False) is None
    assert registry.served_layers(f"{registry_up.host}/nc/absent:v1", tls_verify=False) is None


def test_an_index_under_the_tag_gives_no_figure(registry_up: Registry) -> None:
    image = push_layers(registry_up, "nc/index", "one", [*BASE], {})
    repo = Repository(f"{registry_up.host}/nc/index", tls_verify=False)
    body, media_type = repo.manifest("one")
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": media_type,
                "digest": repo.put_manifest("pinned", body, media_type),
                "size": len(body),
            }
        ],
    }
    repo.put_manifest(
        "multi", json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json"
    )
    assert (
        registry.served_layers(image.reference.replace(":one", ":multi"), tls_verify=False) is None
    )


def test_an_unreachable_registry_is_an_error_not_a_missing_tag() -> None:
    with pytest.raises(
        NestcustomError, match=r"cannot read the manifest of 127\.0\.0\.1:9/nc/x:v1"
    ):
        registry.served_layers("127.0.0.1:9/nc/x:v1", tls_verify=False)


def test_the_update_of_a_push_over_a_tag(registry_up: Registry) -> None:
    """build's figure: what the tag served before, against what the push put there."""
    before = push_layers(registry_up, "nc/moving", "latest", [*BASE, TOOLS], {"v": "1"})
    previous = registry.served_layers(before.reference, tls_verify=False)
    after = push_layers(registry_up, "nc/moving", "latest", [*BASE, AGENT, TOOLS], {"v": "2"})
    served = registry.served_layers(after.reference, tls_verify=False)
    assert served is not None
    pushed_digest = served.digest
    cost = registry.update_since(previous, after.reference, pushed_digest, tls_verify=False)
    assert cost == UpdateCost(1, 4, len(AGENT))
    # Nothing to say without a previous image or without a push.
    assert registry.update_since(None, after.reference, pushed_digest, tls_verify=False) is None
    assert registry.update_since(previous, after.reference, None, tls_verify=False) is None
    # Nor when the pushed image cannot be read back: the push is done, the figure left out.
    gone = "sha256:" + "0" * 64
    assert registry.update_since(previous, after.reference, gone, tls_verify=False) is None
    assert registry.update_since(previous, "127.0.0.1:9/nc/x:v1", gone, tls_verify=False) is None


def test_before_a_push_a_registry_that_cannot_say_leaves_the_figure_out(
    registry_up: Registry,
) -> None:
    """The push after it reports such a registry with its own hints: reading what hosts run
    never fails a build."""
    assert registry.layers_before_push("127.0.0.1:9/nc/x:v1", tls_verify=False) is None
    assert registry.layers_before_push(f"{registry_up.host}/nc/none:v1", tls_verify=False) is None
    pushed = push_layers(registry_up, "nc/before", "v1", [*BASE], {})
    found = registry.layers_before_push(pushed.reference, tls_verify=False)
    assert found is not None and [d for d, _ in found.layers] == list(pushed.layers)
