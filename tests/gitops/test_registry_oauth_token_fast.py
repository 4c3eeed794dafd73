"""A token service that answers in OAuth2's shape, `{"access_token": ...}` (RFC 6749, which
the distribution token spec allows instead of `token`), fast: test_registry_token_fast's
registry and token service, the answer's key changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.gitops.blobs import BlobReader
from nestcustom.image.distribution import Repository
from tests.gitops.test_registry_token_fast import (  # noqa: F401 - a fixture
    PASSWORD,
    TokenRegistry,
    token_registry,
    use_auth,
)


@pytest.fixture
def oauth_registry(token_registry: TokenRegistry) -> Iterator[TokenRegistry]:  # noqa: F811
    token_registry.service.answer_as = "access_token"
    try:
        yield token_registry
    finally:
        token_registry.service.answer_as = "token"


def test_a_blob_behind_an_oauth2_shaped_token_answer(
    oauth_registry: TokenRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{oauth_registry.host}/gitops/oauth"
    use_auth(monkeypatch, tmp_path, oauth_registry.host, PASSWORD)
    data = b"a blob behind an access_token\n" * 40
    digest = Repository(name, tls_verify=False).put_blob(data)
    reader = BlobReader(f"{name}:1", tls_verify=False)
    with reader.open(digest) as stream:
        assert stream.read() == data
    assert (reader._auth or "").startswith("Bearer ey")
