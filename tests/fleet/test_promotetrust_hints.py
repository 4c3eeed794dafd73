"""What promote's signature check tells a user beyond its message: the hint of a lookaside
that does not answer and of a registries.d without one, and a key path whose first directory
starts with an X (read as the path it names), against the real registry, gpg and skopeo of
test_promotetrust_fast's world."""

from __future__ import annotations

import pytest

from nestcustom.errors import BadInputError, NestcustomError
from tests.fleet import test_promotetrust_fast as fast
from tests.fleet.test_promotetrust_fast import DARK, World, checked
from tests.fleet.trustimages import signed_by

pytestmark = fast.pytestmark
world = fast.world  # the module's registry, lookaside and keys, made again for this module


def raised(image: str, digest: str) -> NestcustomError:
    with pytest.raises(NestcustomError) as caught:
        checked(image, digest)
    return caught.value


def test_a_dark_lookaside_says_it_must_answer_and_that_nothing_moved(world: World) -> None:
    image, digest = world.image(
        "darkhint", [world.trust(lookasides={f"{world.host}/promote": DARK})]
    )
    error = raised(image, digest)
    assert type(error) is NestcustomError
    assert error.hint == (
        "the image's lookaside (its registries.d) must answer from here; nothing was moved"
    )


def test_no_lookaside_for_the_repository_says_the_scope_needs_one(world: World) -> None:
    files = world.trust(lookasides={f"{world.host}/elsewhere": world.url})
    image, digest = world.image("nolookasidehint", [files])
    error = raised(image, digest)
    assert type(error) is BadInputError
    assert error.hint == "the recipe's signing: scope needs a lookaside: URL"


def test_a_key_under_a_directory_starting_with_x_is_found(world: World) -> None:
    key = "/Xkeys/site.pub.asc"
    files = world.trust({f"{world.host}/promote": [signed_by(key)]}, keys={key: "site"})
    image, digest = world.image("xkeys", [files])
    world.sign("site", image, digest)
    assert checked(image, digest).fingerprint == world.fingerprints["site"]
