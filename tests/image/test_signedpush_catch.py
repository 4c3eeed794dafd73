"""Push, sign, then tag, through the real push proxy, a real registry, skopeo and gpg
(podman's push done by HTTP: tests/image/pushing.py): the tag appears only once the
signature is stored, and a stop during the push leaves the image untagged, saying so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.image import registry as registry_module
from nestcustom.image.publish import StopFlag, Stopped
from nestcustom.image.signedpush import publish_signed
from nestcustom.image.signing import Signed, Signer, SignOptions, signing_session
from tests.image.pushing import HttpPodman, image_config, image_id
from tests.image.signkeys import make_key
from tests.universe.registry import Registry, run_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture
def signer(tmp_path: Path) -> Iterator[Signer]:
    key, _ = make_key(tmp_path / "key", "nc <nc@nc.invalid>")
    with signing_session(SignOptions(key, store=f"file://{tmp_path}/store")) as session:
        yield session


def test_a_signed_push_is_tagged_once_its_signature_is_stored(
    registry: Registry, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    config = image_config({"org.example.role": "web"})
    podman = HttpPodman(config)
    reference = f"{registry.host}/nc/signed:1"
    tags_when_signed: list[list[str]] = []
    sign = signer.sign

    def watched_sign(identity: str, digest: str, manifest: bytes) -> Signed:
        tags_when_signed.append(registry.tags("nc/signed"))
        return sign(identity, digest, manifest)

    monkeypatch.setattr(signer, "sign", watched_sign)
    stop = StopFlag()
    digest = publish_signed(
        podman,
        image_id(config),
        reference,
        signer=signer,
        attach=None,
        tls_verify=False,
        stop=stop,
        on_line=lambda line: None,
    )
    assert tags_when_signed == [[]]  # nothing under the tag while signing
    served = registry_module.served(reference, tls_verify=False)
    assert served is not None
    assert (served.digest, served.image_id) == (digest, image_id(config))
    stored = tmp_path / "store" / f"nc/signed@sha256={digest.removeprefix('sha256:')}"
    assert [p.name for p in stored.iterdir()] == ["signature-1"]
    assert podman.tags == {reference: image_id(config)}
    assert (stop.tagged, stop.pushed) == ([reference], [reference])


def test_a_stop_during_the_push_leaves_the_image_untagged_and_says_so(
    registry: Registry, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    config = image_config({"org.example.role": "stopped"})
    podman = HttpPodman(config)
    stop = StopFlag()
    podman.on_push = stop.stop  # Ctrl-C while podman pushes
    with pytest.raises(Stopped) as caught:
        publish_signed(
            podman,
            image_id(config),
            f"{registry.host}/nc/stopped:1",
            signer=signer,
            attach=None,
            tls_verify=False,
            stop=stop,
            on_line=lambda line: None,
        )
    message = caught.value.message
    assert message.startswith("interrupted before signing; sha256:")
    assert message.endswith(" is in the registry untagged, no tag was set")
    assert registry.tags("nc/stopped") == []
    assert podman.tags == {}
    assert not (tmp_path / "store" / "nc").exists()
    assert stop.left() == "no tag was set, nothing was pushed"
