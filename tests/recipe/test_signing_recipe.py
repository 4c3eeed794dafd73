"""The recipes' signing: key: a signature type per scope, the matching policy.json and
registries.d, keys of the right kind, and the label deploy reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nestcustom.containerfile import signing
from nestcustom.containerfile.render import image_labels
from nestcustom.errors import RecipeError
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, ROOT, WriteRecipe

HEAD = f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [strace]}}]\n"
GPG_PUB = (ROOT / "files" / "site" / "signing-key.pub.asc").read_text()
COSIGN_PUB = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"


@pytest.fixture
def keys(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    (project / "files" / "site.asc").write_text(GPG_PUB)
    (project / "files" / "cosign.pub").write_text(COSIGN_PUB)
    (project / "files" / "secret.asc").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n")
    return project


def test_gpg_is_the_default_type_and_writes_signed_by_with_its_lookaside(
    keys: Path, write_recipe: WriteRecipe
) -> None:
    path = write_recipe(
        HEAD + "signing:\n  default: reject\n  scopes:\n"
        "    - {scope: registry.example.com/site, key: files/site.asc,"
        " lookaside: 'https://sigs.example.com/'}\n"
        "    - {scope: quay.io/other, key: files/cosign.pub, type: sigstore}\n"
    )
    recipe = load_recipe(path).recipe
    policy = json.loads(signing.policy_json(recipe))
    assert policy["default"] == [{"type": "reject"}]
    # Images from the local daemon stay usable under reject, as containers-common's own
    # policy.json has it (podman's docker-daemon: transport reads them).
    assert policy["transports"]["docker-daemon"] == {"": [{"type": "insecureAcceptAnything"}]}
    assert policy["transports"]["docker"]["registry.example.com/site"] == [
        {
            "type": "signedBy",
            "keyType": "GPGKeys",
            "keyPath": "/etc/pki/containers/site.asc",
            "signedIdentity": {"type": "matchRepository"},
        }
    ]
    [sigstore] = policy["transports"]["docker"]["quay.io/other"]
    assert sigstore["type"] == "sigstoreSigned" and sigstore["keyPath"].endswith("cosign.pub")
    assert signing.registries_yaml(recipe).splitlines()[1:] == [
        "docker:",
        "  registry.example.com/site:",
        '    sigstore: "https://sigs.example.com/"',
        "  quay.io/other:",
        "    use-sigstore-attachments: true",
    ]
    assert dict(image_labels(recipe))["io.nestcustom.signing"] == (
        "gpg:registry.example.com/site sigstore:quay.io/other"
    )


def test_no_signing_no_label(keys: Path, write_recipe: WriteRecipe) -> None:
    recipe = load_recipe(write_recipe(HEAD)).recipe
    assert "io.nestcustom.signing" not in dict(image_labels(recipe))


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (
            "{scope: r.example.com/a, key: files/site.asc}",
            "recipes/r.yaml:6:7: signing.scopes[0]: scope r.example.com/a: gpg signatures need "
            "a lookaside: the web server hosts read them from\n  hint: add lookaside: "
            "https://SERVER/PATH/ (where build --sign --signature-store puts them is published)",
        ),
        (
            "{scope: r.example.com/a, key: files/cosign.pub, lookaside: 'https://s.example/'}",
            "recipes/r.yaml:6:37: signing.scopes[0].key: files/cosign.pub is a sigstore (cosign) "
            "public key, not a GPG public key (type: gpg)\n  hint: say `type: sigstore` for this scope",
        ),
        (
            "{scope: r.example.com/a, key: files/site.asc, type: sigstore}",
            "recipes/r.yaml:6:37: signing.scopes[0].key: files/site.asc is a GPG public key, not a "
            "sigstore (cosign) public key (type: sigstore)\n  hint: say `type: gpg` for this scope",
        ),
        (
            "{scope: r.example.com/a, key: files/secret.asc, lookaside: 'https://s.example/'}",
            "recipes/r.yaml:6:37: signing.scopes[0].key: files/secret.asc is a GPG secret key, not "
            "a GPG public key (type: gpg)\n  hint: never ship a private key in an image: give its "
            "public key",
        ),
        (
            "{scope: r.example.com/a, key: files/site.asc, lookaside: 'ftp://s.example/'}",
            "recipes/r.yaml:6:64: signing.scopes[0].lookaside: 'ftp://s.example/' is not an "
            "http:// or https:// URL",
        ),
        (
            "{scope: r.example.com/a, key: files/cosign.pub, type: sigstore, "
            "lookaside: 'https://s.example/'}",
            "recipes/r.yaml:6:82: signing.scopes[0].lookaside: scope r.example.com/a: a sigstore "
            "signature is read from the registry, beside the image: a lookaside would never be "
            "used\n  hint: remove lookaside: (it is for type: gpg)",
        ),
    ],
)
def test_bad_signing_scopes_are_located(
    keys: Path, write_recipe: WriteRecipe, scope: str, expected: str
) -> None:
    path = write_recipe(HEAD + "signing:\n  scopes:\n    - " + scope + "\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert [p.format() for p in caught.value.problems] == [expected]
