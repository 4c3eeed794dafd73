"""Signing with the real gpg and skopeo: a key whose passphrase is not given is refused
saying how to give it, a signature is checked once made and found again rather than
made twice, and an identity skopeo cannot verify is refused with skopeo's reason."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.image.signing import SignOptions, signing_session
from tests.image.signkeys import make_key

MANIFEST = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def test_a_key_without_its_passphrase_is_refused_saying_how_to_give_it(tmp_path: Path) -> None:
    key, _ = make_key(tmp_path / "key", "nc <nc@nc.invalid>", "s3cret")
    with pytest.raises(BadInputError) as caught, signing_session(SignOptions(key)):
        pass
    assert caught.value.message == f"{key}: the key needs a passphrase"
    assert caught.value.hint == (
        "give it with --sign-passphrase-file FILE (in CI: a file variable), or run in a terminal"
    )


def test_a_stored_signature_is_found_again_not_made_twice(tmp_path: Path) -> None:
    key, fingerprint = make_key(tmp_path / "key", "nc <nc@nc.invalid>")
    store = tmp_path / "store"
    identity = "reg.example.com/ns/img:1"
    with signing_session(SignOptions(key, store=f"file://{store}")) as signer:
        made = signer.ensure(identity, DIGEST, False, MANIFEST)
        # a signature made now would differ from the first (gpg's signing time, in
        # seconds), and be stored beside it
        time.sleep(1.05 - time.time() % 1)
        again = signer.ensure(identity, DIGEST, False, MANIFEST)
    directory = store / f"ns/img@sha256={DIGEST.removeprefix('sha256:')}"
    assert made.url == f"file://{directory}/signature-1"
    assert again == made
    assert made.fingerprint == fingerprint
    assert sorted(p.name for p in directory.iterdir()) == ["signature-1"]


def test_an_identity_skopeo_cannot_verify_is_refused_with_its_reason(tmp_path: Path) -> None:
    key, _ = make_key(tmp_path / "key", "nc <nc@nc.invalid>")
    with (
        signing_session(SignOptions(key, store=f"file://{tmp_path}/store")) as signer,
        pytest.raises(NestcustomError) as caught,
    ):
        signer.signature(MANIFEST, "Reg.Example.com/NS/img:1")
    message = caught.value.message
    assert message.startswith(
        "the signature just made for Reg.Example.com/NS/img:1 does not verify: "
    )
    assert "repository name must be lowercase" in message
