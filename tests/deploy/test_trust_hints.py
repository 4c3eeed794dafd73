"""What deploy's trust step tells the user to do when a host cannot prove the target's
signature: a host without a lookaside for the repository, and a digest no trusted key
signed (test_trust_check_fast's hosts: real skopeo, gpg and curl against a real registry
and lookaside)."""

from __future__ import annotations

from tests.deploy import test_trust_check_fast as fast
from tests.deploy.test_trust_check_fast import Host, refused
from tests.universe.registry import Registry

pytestmark = fast.pytestmark
# The fixtures, made again for this module.
images, registry, signed, host = fast.images, fast.registry, fast.signed, fast.host


def test_a_host_without_a_lookaside_is_told_where_one_comes_from(
    host: Host, registry: Registry
) -> None:
    (host.etc / "registries.d" / "site.yaml").unlink()
    failed = refused(host.make_run("two"))
    assert (
        failed.hint == "the image's signing: writes one (lookaside:); or configure it on the host"
    )


def test_a_digest_no_trusted_key_signed_is_told_how_to_sign_it(host: Host) -> None:
    failed = refused(host.make_run("other"))
    assert failed.hint == (
        "sign the image (build --push --sign KEY) with a key the host's policy names, or "
        "check the host's lookaside and keys; nothing was staged"
    )
