"""Layer blobs, release tags and pushed SBOMs against a real registry (Debian's
docker-registry, started in about a second), fast: tiny images written as OCI layouts and
pushed with skopeo (tests/fleet/test_promote_registry.py's `push`), no podman."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.gitops.blobs import BlobReader, _NoAuthOnRedirect, manifest_layers
from nestcustom.gitops.imagedb import ImageDb
from nestcustom.gitops.sbom import RpmPackage, Subject, read_rpm_packages, sbom_of
from nestcustom.gitops.sbompush import push_sbom, sbom_tag
from nestcustom.gitops.tags import ReleaseTags, add_tags, choose_tags
from nestcustom.image.distribution import Repository
from nestcustom.image.signedpush import Pushed
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Recipe
from tests.fleet.test_promote_registry import push, serving
from tests.gitops.helpers import commit_all
from tests.gitops.test_rpmdb_fast import build_db
from tests.universe.registry import Registry, run_registry

USER, PASSWORD = "gitops", "not-a-real-secret"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that asks for a login (htpasswd: Basic)."""
    with run_registry(tmp_path_factory.mktemp("locked"), login=(USER, PASSWORD)) as running:
        yield running


def auth_file(tmp: Path, entries: dict[str, tuple[str, str]]) -> Path:
    path = tmp / "auth.json"
    path.write_text(
        json.dumps({"auths": {host: {"auth": _basic(*up)} for host, up in entries.items()}})
    )
    return path


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def blob_refusal(reader: BlobReader, digest: str) -> NestcustomError:
    with pytest.raises(NestcustomError) as raised, reader.open(digest):
        pass
    return raised.value


# -- blobs ------------------------------------------------------------------------------


def test_a_layer_blob_streams_counted_and_intact(registry: Registry, tmp_path: Path) -> None:
    push(registry, tmp_path, "gitops/blobs", "one")
    reference = f"{registry.host}/gitops/blobs:one"
    (layer,) = manifest_layers(reference, tls_verify=False)
    reader = BlobReader(reference, tls_verify=False)
    with reader.open(layer.digest) as stream:
        first = stream.read(100)
        assert reader.downloaded == 100
        data = first + stream.read()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.digest
    assert reader.downloaded == len(data) == layer.size
    with reader.open(layer.digest) as stream:  # the reader keeps counting
        stream.read()
    assert reader.downloaded == 2 * layer.size


def test_a_missing_blob_and_a_plain_registry_with_tls_are_located_errors(
    registry: Registry,
) -> None:
    reference = f"{registry.host}/gitops/blobs:one"
    missing = "sha256:" + "0" * 64
    refused = blob_refusal(BlobReader(reference, tls_verify=False), missing)
    assert refused.message == (
        f"{reference}: the registry answered 404 Not Found for /v2/gitops/blobs/blobs/{missing}"
    )
    assert refused.hint == "check the login (podman login) and the image name"
    refused = blob_refusal(BlobReader(reference), missing)  # TLS verified: no fallback to HTTP
    assert refused.message.startswith(f"{reference}: cannot reach {registry.host}: ")
    assert refused.hint == "with a registry without TLS, pass --no-tls-verify"


def test_a_registry_that_asks_for_a_login_gets_the_users_credentials(
    locked: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{locked.host}/gitops/locked"
    monkeypatch.setenv(
        "REGISTRY_AUTH_FILE", str(auth_file(tmp_path, {locked.host: (USER, PASSWORD)}))
    )
    data = b"a blob behind a login\n" * 50
    digest = Repository(name, tls_verify=False).put_blob(data)
    reader = BlobReader(f"{name}:1", tls_verify=False)
    with reader.open(digest) as stream:
        assert stream.read() == data
    assert reader._auth == "Basic " + _basic(USER, PASSWORD)
    assert reader.downloaded == len(data)

    monkeypatch.setenv(
        "REGISTRY_AUTH_FILE", str(auth_file(tmp_path, {"other.invalid": ("a", "b")}))
    )
    refused = blob_refusal(BlobReader(f"{name}:1", tls_verify=False), digest)
    assert refused.message == (
        f"{name}:1: the registry answered 401 Unauthorized for /v2/gitops/locked/blobs/{digest}"
    )
    monkeypatch.setenv(
        "REGISTRY_AUTH_FILE", str(auth_file(tmp_path, {locked.host: (USER, "wrong")}))
    )
    refused = blob_refusal(BlobReader(f"{name}:1", tls_verify=False), digest)
    assert "the registry answered 401 Unauthorized" in refused.message


def test_a_login_challenge_the_reader_cannot_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No credentials for Basic, an unknown scheme, a token service that is no HTTP(S) URL:
    no login (and nothing is fetched from a file: realm)."""
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file(tmp_path, {})))
    reader = BlobReader("127.0.0.1:9/x/y:1", tls_verify=False)
    assert reader._login('Basic realm="r"') is False
    assert reader._login('Digest realm="r"') is False
    secret = tmp_path / "secret"
    secret.write_text('{"token": "from a file"}')
    assert reader._login(f'Bearer realm="file://{secret}",service="s"') is False
    assert reader._auth is None


def test_credentials_never_follow_a_redirect_to_another_host() -> None:
    handler = _NoAuthOnRedirect()
    for same, url in ((True, "http://127.0.0.1:5000/v2/x/blobs/other"),
                      (False, "http://cdn.example.com/signed?x=1"),
                      (False, "http://127.0.0.1:5001/v2/x/blobs/d")):  # fmt: skip
        request = urllib.request.Request("http://127.0.0.1:5000/v2/x/blobs/d")
        request.add_header("Authorization", "Bearer secret")
        request.add_unredirected_header("Authorization", "Bearer secret")
        new = handler.redirect_request(request, None, 307, "Temporary Redirect", {}, url)  # type: ignore[no-untyped-call]
        assert new is not None and new.full_url == url
        assert (new.get_header("Authorization") == "Bearer secret") is same, url
        assert "Authorization" not in new.unredirected_hdrs


# -- release tags ---------------------------------------------------------------------------

RECIPE = """\
name: web
description: web
base: {image: "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"}
layers: [{name: tools, install: [strace]}]
"""


def project(tmp: Path, commit: bool = True) -> tuple[Recipe, Path]:
    root = tmp / "project"
    (root / "recipes").mkdir(parents=True)
    (root / "recipes" / "web.yaml").write_text(RECIPE)
    if commit:
        commit_all(root, "web")  # committed 2026-11-30T10:00:00Z (tests/gitops/helpers.py)
    return load_recipe(root / "recipes" / "web.yaml", root).recipe, root


def test_release_tags_count_per_day_and_a_rerun_reuses_its_own(
    registry: Registry, tmp_path: Path
) -> None:
    one = push(registry, tmp_path, "gitops/tags", "one")
    two = push(registry, tmp_path, "gitops/tags", "two")
    push(registry, tmp_path, "gitops/tags", "22.03-LTS-SP2.20261130.x")  # no serial: not counted
    push(registry, tmp_path, "gitops/tags", "22.03-LTS-SP2.20261129.7")  # another day
    reference = f"{registry.host}/gitops/tags:latest"
    recipe, root = project(tmp_path)
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    first = choose_tags(recipe, reference, one, root, tls_verify=False)
    assert first == ReleaseTags("22.03-LTS-SP2.20261130.0", f"sha-{commit[:12]}", "")
    made = add_tags(reference, one, first.tags, tls_verify=False)
    assert made == [f"{registry.host}/gitops/tags:{t}" for t in first.tags]
    assert [serving(r) for r in made] == [one, one]
    # the same digest again (a re-run of the job) finds its tag; another digest counts on
    assert choose_tags(recipe, reference, one, root, tls_verify=False) == first
    second = choose_tags(recipe, reference, two, root, tls_verify=False)
    assert second.version == "22.03-LTS-SP2.20261130.1"
    add_tags(reference, two, (second.version,), tls_verify=False)
    assert choose_tags(recipe, reference, one, root, tls_verify=False) == first
    assert sorted(registry.tags("gitops/tags")) == sorted(
        ["one", "two", "22.03-LTS-SP2.20261130.x", "22.03-LTS-SP2.20261129.7",
         "22.03-LTS-SP2.20261130.0", "22.03-LTS-SP2.20261130.1", f"sha-{commit[:12]}"]
    )  # fmt: skip


def test_no_commit_tag_for_a_dirty_tree_or_no_git(registry: Registry, tmp_path: Path) -> None:
    one = push(registry, tmp_path, "gitops/dirty", "one")
    # other images took serials 9 and 10 of the day (numbers, not text: 10 is the last)
    push(registry, tmp_path, "gitops/dirty", "22.03-LTS-SP2.20261130.9")
    push(registry, tmp_path, "gitops/dirty", "22.03-LTS-SP2.20261130.10")
    reference = f"{registry.host}/gitops/dirty:latest"
    recipe, root = project(tmp_path / "a")
    (root / "recipes" / "web.yaml").write_text(RECIPE + "# changed\n")
    assert choose_tags(recipe, reference, one, root, tls_verify=False) == ReleaseTags(
        "22.03-LTS-SP2.20261130.11", None, "no sha- tag: the work tree has uncommitted changes"
    )
    recipe, root = project(tmp_path / "b", commit=False)
    today = time.strftime("%Y%m%d", time.gmtime())
    assert choose_tags(recipe, reference, one, root, tls_verify=False) == ReleaseTags(
        f"22.03-LTS-SP2.{today}.0",
        None,
        "no sha- tag: the project is not a git checkout with commits",
    )


def test_tags_refused(registry: Registry, tmp_path: Path) -> None:
    one = push(registry, tmp_path, "gitops/refused", "one")
    reference = f"{registry.host}/gitops/refused:latest"
    with pytest.raises(NestcustomError) as raised:
        add_tags(reference, one, ("fine", "not a tag"), tls_verify=False)
    assert raised.value.message == "'not a tag' is not a valid tag"
    assert serving(f"{registry.host}/gitops/refused:fine") == one  # the valid one before it
    recipe, root = project(tmp_path)
    with pytest.raises(NestcustomError) as raised:
        choose_tags(
            recipe, f"{registry.host}/gitops/never-pushed:latest", one, root, tls_verify=False
        )
    assert raised.value.message.startswith(
        f"cannot list the tags of {registry.host}/gitops/never-pushed: "
    )
    assert raised.value.hint == "check the login (podman login) and --tls-verify"


# -- SBOM next to the image -------------------------------------------------------------------


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[RpmPackage, ...]:
    built = build_db(tmp_path_factory.mktemp("push-rpmdb"))
    return read_rpm_packages(ImageDb("img", "local", built.found, (), 1, 0))


def test_the_sbom_is_pushed_next_to_its_image(
    registry: Registry, tmp_path: Path, packages: tuple[RpmPackage, ...]
) -> None:
    digest = push(registry, tmp_path, "gitops/sbom", "one")
    repository = f"{registry.host}/gitops/sbom"
    subject = Subject(
        "localhost/web:1",
        None,
        "e" * 64,
        {"org.opencontainers.image.created": "2026-11-30T10:00:00Z"},
    )
    pushed = Pushed(f"{repository}:latest", digest, "e" * 64, None)
    where, manifest_digest = push_sbom(pushed, None, False, "spdx", read=(subject, packages))
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sbom"
    assert sbom_tag(digest) == tag
    assert where == f"{repository}:{tag}"
    raw, media_type = Repository(repository, tls_verify=False).manifest(tag)
    assert media_type == "application/vnd.oci.image.manifest.v1+json"
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == manifest_digest
    manifest = json.loads(raw)
    image_raw, _ = Repository(repository, tls_verify=False).manifest(digest)
    expected = sbom_of((subject, packages), "spdx", name=f"{repository}@{digest}", digest=digest)
    body = (json.dumps(expected.document, indent=2, sort_keys=True) + "\n").encode()
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2},
        "layers": [{"mediaType": "application/spdx+json",
                    "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body),
                    "annotations": {"org.opencontainers.image.title": "sbom.spdx.json"}}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                    "size": len(image_raw)},
    }  # fmt: skip
    with BlobReader(f"{repository}:{tag}", tls_verify=False).open(
        manifest["layers"][0]["digest"]
    ) as stream:
        document = json.loads(stream.read())
    assert document["name"] == f"{repository}@{digest} RPM packages"
    assert [p["name"] for p in document["packages"][1:]] == ["libnc-sbom", "nc-plain", "nc-sbom"]
    # pushed again (a rebuild), the same artifact; CycloneDX under the same tag scheme
    assert push_sbom(pushed, None, False, "spdx", read=(subject, packages)) == (
        where,
        manifest_digest,
    )
    _, cdx_digest = push_sbom(pushed, None, False, "cyclonedx", read=(subject, packages))
    cdx = json.loads(Repository(repository, tls_verify=False).manifest(tag)[0])
    assert (
        "sha256:"
        + hashlib.sha256(Repository(repository, tls_verify=False).manifest(tag)[0]).hexdigest()
        == cdx_digest
    )
    assert (cdx["artifactType"], cdx["layers"][0]["annotations"]) == (
        "application/vnd.cyclonedx+json",
        {"org.opencontainers.image.title": "sbom.cyclonedx.json"},
    )
