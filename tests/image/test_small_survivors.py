"""Small behaviours of the image stage a user sees: credentials under a /v1 key, the last
step of a failed build, the passphrase file's mode, the signature store named by
registries.d, skopeo's TLS flags, and the hints of refused input."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.image import gpgkey, registry
from nestcustom.image.auth import credentials_for
from nestcustom.image.build import _explain_failure
from nestcustom.image.events import BuildFailed
from nestcustom.image.inputs import project_files
from nestcustom.image.lookaside import SignatureStore, staging_url
from nestcustom.image.secrets import parse_secret
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe


@pytest.mark.parametrize(
    "key", ["https://reg.example.com/v1/", "reg.example.com/v2", "http://reg.example.com/"]
)
def test_credentials_are_found_under_a_key_with_scheme_and_api_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """docker login writes keys like https://index.docker.io/v1/: the same registry."""
    auth = tmp_path / "auth.json"
    token = base64.b64encode(b"builder:s3cret").decode()
    auth.write_text(json.dumps({"auths": {key: {"auth": token}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    found = credentials_for("reg.example.com/ns/img:1")
    assert found is not None
    assert (found.username, found.password, found.source) == ("builder", "s3cret", auth)


def test_a_failure_at_the_last_step_names_that_step(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: a, install: [x]}}\n"
    )
    recipe = load_recipe(path).recipe
    rendering = render_containerfile(recipe, "containerfiles/r")
    last = len(rendering.steps)
    error = _explain_failure(recipe, rendering, BuildFailed("no space left", None, last, ()))
    assert rendering.steps[-1].name == "labels"
    assert error.message == f"r: labels failed at step {last}/{last}: no space left"
    beyond = _explain_failure(recipe, rendering, BuildFailed("odd", None, last + 1, ()))
    assert beyond.message == f"r: build failed at step {last + 1}/{last}: odd"


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_passphrase_file_is_readable_by_its_owner_only(
    tmp_path: Path, open_umask: None
) -> None:
    path = gpgkey.passphrase_file(tmp_path, "correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "correct horse"
    assert gpgkey.read_passphrase(path) == "correct horse"


def test_a_sigstore_staging_entry_is_where_signatures_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """registries.d's older names (sigstore-staging) still count, before the readers' URL."""
    monkeypatch.setenv("HOME", str(tmp_path))
    directory = tmp_path / ".config/containers/registries.d"
    directory.mkdir(parents=True)
    (directory / "site.yaml").write_text(
        "docker:\n  reg.example.com/site:\n    lookaside: https://read.example/\n"
        "    sigstore-staging: file:///srv/staged/\n"
    )
    assert staging_url("reg.example.com/site/web", None) == "file:///srv/staged"


def test_a_signature_store_that_is_not_a_directory_is_named_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("a file, not a directory")
    store = SignatureStore(f"file://{tmp_path}/store")
    with pytest.raises(NestcustomError) as caught:
        store.store("ns/img", "sha256:" + "a" * 64, b"sig")
    assert caught.value.message.startswith("cannot write the signature to ")
    assert caught.value.hint == "check that the signature store directory is writable"


def test_retag_passes_tls_verification_to_skopeo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real skopeo, a registry port nobody listens on: it gets as far as connecting, which it
    does not if a flag is malformed."""
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    digest = "sha256:" + "0" * 64
    for verify in (True, False):
        with pytest.raises(NestcustomError) as caught:
            registry.retag(
                f"127.0.0.1:9/ns/img@{digest}", "127.0.0.1:9/ns/img:1", tls_verify=verify
            )
        message = caught.value.message
        assert message.startswith(
            f"cannot move 127.0.0.1:9/ns/img:1 to 127.0.0.1:9/ns/img@{digest}:"
        )
        assert "connection refused" in message, message


def test_a_malformed_secret_gets_an_example(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        parse_secret("repo-cred")
    assert caught.value.message == "--secret 'repo-cred': write id=ID,src=FILE"
    assert caught.value.hint == (
        "for example --secret id=repo-cred,src=/run/user/0/repo-cred (a file holding USER:PASSWORD)"
    )


def test_a_project_file_gone_before_the_build_is_named_with_a_hint(
    write_recipe: WriteRecipe, project: Path
) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nfiles:\n  - {{src: files/motd, dest: /etc/motd}}\n"
    )
    recipe = load_recipe(path).recipe
    rendering = render_containerfile(recipe, "containerfiles/r")
    assert "files/motd" in rendering.sources
    (project / "files" / "motd").unlink()
    with pytest.raises(NestcustomError) as caught:
        project_files(recipe, rendering, project)
    assert caught.value.message == "r: cannot read files/motd: No such file or directory"
    assert caught.value.hint == "the recipe's files: are relative to the project root"


@pytest.mark.parametrize(
    ("stderr", "absent"),
    [
        ("reading manifest 1 in r.example/a: manifest unknown: manifest unknown", True),
        ("reading manifest 1 in r.example/a: name unknown: repository name not known", True),
        ("reading manifest 1 in r.example/a: not found", True),  # a 404 in its own words
        ("reading manifest 1 in r.example/a: unauthorized: authentication required", False),
        ("pinging container registry r.example: connection refused", False),
    ],
)
def test_a_tag_the_registry_does_not_have_is_told_from_a_failure(stderr: str, absent: bool) -> None:
    assert registry._no_such_tag(stderr) is absent
