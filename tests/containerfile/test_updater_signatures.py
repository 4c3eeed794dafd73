"""The host-side updater proves the signature of the digest it is about to stage, as the
recipe's `signing:` asks, with the check `nestcustom deploy` runs on hosts (the image's
/usr/libexec/nestcustom/verify): real gpg keys, signatures made by nestcustom's signer
(skopeo standalone-sign) into a lookaside served over HTTP, read by real curl and checked
by real skopeo on a real registry. The host is the fake one of test_updater_scripts (its
rpm-ostree follows the contract). What a user sees: what is staged and by which
reference, what the updater says when it stages nothing, what `status` gets to read."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from nestcustom.image.distribution import Repository
from nestcustom.image.gpgkey import generate
from nestcustom.image.signing import SignOptions, signing_session
from tests.conftest import BASE, WriteRecipe
from tests.containerfile.test_updater_scripts import (
    MACHINE_ID,
    REPOSITORY,
    Host,
    Lock,
    images,
    lock,
    make_host,
    registry,
    tag_ring,
)
from tests.fleet.test_promote_registry import push
from tests.fleet.test_promote_signed_universe import serve
from tests.universe.registry import Registry

__all__ = ["images", "lock", "registry"]  # fixtures shared with test_updater_scripts

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0 or not Path("/etc/containers/registries.conf.d").is_dir(),
        reason="root and containers-common's registries.conf.d (scripts/setup-host)",
    ),
    pytest.mark.skipif(not MACHINE_ID.exists(), reason="systemd-id128 needs /etc/machine-id"),
    pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg (scripts/setup-host)"),
]


# A cosign public key (an EC P-256 key in PEM): a sigstore scope's key. Debian 12's
# containers/image cannot check sigstore signatures, so none is made here.
COSIGN_PUBLIC = """\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECGoGX/WThWR1BG8GN8pxM3MwdH81
nk1g+HiPZhLryjg2K3ptlzzaDV/ZqgRZGQT3I/dc/5Ta9YafqN46QrkN2Q==
-----END PUBLIC KEY-----
"""


@dataclass(frozen=True)
class Signed:
    lookaside: str  # http://127.0.0.1:PORT/
    public: dict[str, Path]  # key name -> its public key file
    fingerprints: dict[str, str]
    digests: dict[str, str]  # image name -> digest; `two` signed by site, `other` by other,
    # `elsewhere` by site for another repository, `three` not at all


@pytest.fixture(scope="module")
def signed(
    registry: Registry, images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Signed]:
    tmp = tmp_path_factory.mktemp("signed")
    keys = {
        name: generate(tmp / name, f"{name} <{name}@nc.invalid>", None)
        for name in ("site", "other")
    }
    digests = {"two": images["two"]}
    digests |= {
        name: push(registry, tmp, REPOSITORY, name) for name in ("other", "elsewhere", "three")
    }
    store = tmp / "lookaside"
    image = f"{registry.host}/{REPOSITORY}"
    for name, key, identity in (
        ("two", "site", f"{image}:two"),
        ("other", "other", f"{image}:other"),
        ("elsewhere", "site", f"{registry.host}/nestos/another:elsewhere"),
    ):
        with signing_session(SignOptions(keys[key][0], store=f"file://{store}")) as signer:
            manifest, _ = Repository(image, tls_verify=False).manifest(digests[name])
            made = signer.sign(identity, digests[name], manifest)
        if name == "elsewhere":  # stored where signatures of REPOSITORY are read
            digest_dir = f"@sha256={digests[name].split(':')[1]}"
            shutil.copytree(
                store / f"nestos/another{digest_dir}", store / f"{REPOSITORY}{digest_dir}"
            )
        assert made.fingerprint == keys[key][2]
    with serve(store) as url:
        yield Signed(
            url,
            {name: key[1] for name, key in keys.items()},
            {name: key[2] for name, key in keys.items()},
            digests,
        )


def signing_recipe(
    project: Path, signed: Signed, registry: Registry, scope: str, *, key: str = "site",
    kind: str = "gpg", default: str = "accept",
) -> str:  # fmt: skip
    (project / "files").mkdir(exist_ok=True)
    shutil.copy(signed.public[key], project / "files" / "site.pub.asc")
    (project / "files" / "cosign.pub").write_text(COSIGN_PUBLIC)
    lookaside = f", lookaside: '{signed.lookaside}'" if kind == "gpg" else ""
    file = "site.pub.asc" if kind == "gpg" else "cosign.pub"
    return (
        f"name: r\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [strace]}}]\n"
        f"updates: {{ring: stable, fleetlock: 'http://placeholder.invalid/', group: workers}}\n"
        f"signing:\n  default: {default}\n  scopes:\n"
        f"    - {{scope: {registry.host}/{scope}, key: files/{file}, type: {kind}{lookaside}}}\n"
    )


def signed_host(
    tmp_path: Path, project: Path, write_recipe: WriteRecipe, registry: Registry,
    images: dict[str, str], lock: Lock, recipe: str,
) -> Host:  # fmt: skip
    host = make_host(tmp_path / "host", write_recipe(recipe), registry, images["one"], lock)
    (host.root / "pki").mkdir()
    shutil.copy(project / "files" / "site.pub.asc", host.root / "pki" / "site.pub.asc")
    return replace(host, wrap=own_registries_conf(host.root / "registries.conf.d"))


def own_registries_conf(directory: Path) -> tuple[str, ...]:
    """Scripts run in a mount namespace of their own whose /etc/containers/registries.conf.d
    is the host's (the registry insecure, as hosts declare it): skopeo 1.9 reads no other
    place (it ignores CONTAINERS_REGISTRIES_CONF), and this machine's /etc stays as it is."""
    return (
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        'mount --bind "$1" /etc/containers/registries.conf.d && shift && exec "$@"',
        "sh", str(directory),
    )  # fmt: skip


@pytest.fixture
def host(
    tmp_path: Path, project: Path, write_recipe: WriteRecipe, registry: Registry,
    images: dict[str, str], lock: Lock, signed: Signed,
) -> Host:  # fmt: skip
    """A host whose image trusts the site key for REGISTRY/nestos (its repository's namespace)."""
    recipe = signing_recipe(project, signed, registry, "nestos")
    return signed_host(tmp_path, project, write_recipe, registry, images, lock, recipe)


def rebases(host: Host) -> list[str]:
    return [c for c in host.calls() if "rebase" in c]


def test_a_digest_signed_by_the_trusted_key_is_verified_then_staged(
    host: Host, registry: Registry, signed: Signed, lock: Lock
) -> None:
    tag_ring(registry, signed.digests["two"])
    done = host.run("update")
    assert done.returncode == 0, done.stderr
    image = f"{registry.host}/{REPOSITORY}"
    fingerprint = signed.fingerprints["site"]
    assert (
        f"signature verified (scope {registry.host}/nestos): 1 {fingerprint} {image}:two"
        in done.stderr
    )
    # Debian 12's skopeo (1.9) does not enforce policy: the host's own check is the proof
    assert rebases(host) == [
        "rpm-ostree rebase --experimental --bypass-driver --lock-finalization "
        f"ostree-unverified-registry:{image}@{signed.digests['two']}"
    ]
    assert (
        host.root / "verified"
    ).read_text() == f"{signed.digests['two']} {fingerprint} {image}:two\n"
    assert lock.holders() == [host.id]


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("three", "has no signature at http://127.0.0.1:"),
        ("other", "is not signed by a key this host trusts for"),
        ("elsewhere", "is signed for {registry}/nestos/another:elsewhere, another repository"),
    ],
)
def test_a_digest_that_does_not_verify_is_not_staged_and_no_slot_is_asked(
    host: Host, registry: Registry, signed: Signed, lock: Lock, name: str, said: str
) -> None:
    tag_ring(registry, signed.digests[name])
    done = host.run("update")
    assert done.returncode == 1
    assert said.format(registry=registry.host) in done.stderr
    assert "nothing staged" in done.stderr
    assert rebases(host) == [] and "rpm-ostree cleanup -p" not in host.calls()
    assert lock.holders() == [] and lock.store.hosts() == {}
    assert not (host.root / "state" / "staged").exists()
    assert not (host.root / "verified").exists()


def test_a_key_replaced_on_the_host_is_the_one_that_counts(
    host: Host, registry: Registry, signed: Signed
) -> None:
    """The trust file names the key where the image installs it (/etc/pki/containers/): a
    host that puts another key there verifies with it."""
    shutil.copy(signed.public["other"], host.root / "pki" / "site.pub.asc")
    tag_ring(registry, signed.digests["two"])
    refused = host.run("update")
    assert refused.returncode == 1 and "is not signed by a key this host trusts" in refused.stderr
    tag_ring(registry, signed.digests["other"])
    taken = host.run("update")
    assert taken.returncode == 0, taken.stderr
    assert signed.digests["other"] in rebases(host)[0]


def enforcing_skopeo(bin_dir: Path) -> None:
    """A skopeo in `bin_dir` that says it is 1.13 (which enforces policy.json); the real
    one otherwise."""
    real = shutil.which("skopeo")
    wrapper = bin_dir / "skopeo"
    wrapper.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "skopeo version 1.13.3"; exit 0; }\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)


@pytest.mark.parametrize(("default", "transport"), [("reject", "ostree-image-signed:docker://"),
                                                     ("accept", "ostree-unverified-registry:")])  # fmt: skip
def test_rpm_ostree_checks_again_where_skopeo_enforces_a_policy_that_rejects_others(
    tmp_path: Path, project: Path, write_recipe: WriteRecipe, registry: Registry,
    images: dict[str, str], lock: Lock, signed: Signed, default: str, transport: str,
) -> None:  # fmt: skip
    """ostree-ext refuses ostree-image-signed: under a policy whose default accepts anything
    (contract section 2): then the host's own check stays the only one."""
    recipe = signing_recipe(project, signed, registry, "nestos", default=default)
    host = signed_host(tmp_path, project, write_recipe, registry, images, lock, recipe)
    enforcing_skopeo(host.root / "bin")
    tag_ring(registry, signed.digests["two"])
    done = host.run("update")
    assert done.returncode == 0, done.stderr
    assert "signature verified" in done.stderr
    image = f"{registry.host}/{REPOSITORY}"
    assert rebases(host)[0].endswith(f" {transport}{image}@{signed.digests['two']}")


def test_an_image_no_scope_covers_goes_as_before_unless_the_policy_rejects_others(
    tmp_path: Path, project: Path, write_recipe: WriteRecipe, registry: Registry,
    images: dict[str, str], lock: Lock, signed: Signed,
) -> None:  # fmt: skip
    tag_ring(registry, signed.digests["three"])  # unsigned
    accept = signing_recipe(project, signed, registry, "elsewhere")
    host = signed_host(tmp_path / "a", project, write_recipe, registry, images, lock, accept)
    done = host.run("update")
    assert done.returncode == 0, done.stderr
    assert rebases(host)[0].endswith(
        f" ostree-unverified-registry:{registry.host}/{REPOSITORY}@{signed.digests['three']}"
    )
    reject = signing_recipe(project, signed, registry, "elsewhere", default="reject")
    refusing = signed_host(tmp_path / "r", project, write_recipe, registry, images, lock, reject)
    refused = refusing.run("update")
    assert refused.returncode == 1
    assert (
        f"the image's policy rejects {registry.host}/{REPOSITORY}: none of its signing scopes covers it"
        in refused.stderr
    )
    assert rebases(refusing) == []


def test_the_most_specific_scope_decides(
    tmp_path: Path, project: Path, write_recipe: WriteRecipe, registry: Registry,
    images: dict[str, str], lock: Lock, signed: Signed,
) -> None:  # fmt: skip
    """The registry's scope asks for sigstore, the repository's for gpg: the gpg key counts."""
    recipe = signing_recipe(project, signed, registry, REPOSITORY).replace(
        "  scopes:\n",
        f"  scopes:\n    - {{scope: {registry.host}, key: files/cosign.pub, type: sigstore}}\n",
    )
    host = signed_host(tmp_path, project, write_recipe, registry, images, lock, recipe)
    tag_ring(registry, signed.digests["two"])
    done = host.run("update")
    assert done.returncode == 0, done.stderr
    assert f"signature verified (scope {registry.host}/{REPOSITORY})" in done.stderr


def test_a_sigstore_scope_needs_a_skopeo_that_enforces_it(
    tmp_path: Path, project: Path, write_recipe: WriteRecipe, registry: Registry,
    images: dict[str, str], lock: Lock, signed: Signed,
) -> None:  # fmt: skip
    recipe = signing_recipe(project, signed, registry, "nestos", kind="sigstore")
    host = signed_host(tmp_path, project, write_recipe, registry, images, lock, recipe)
    tag_ring(registry, signed.digests["two"])
    done = host.run("update")
    assert done.returncode == 1
    assert "needs a sigstore signature (scope" in done.stderr
    assert "only a skopeo that enforces policy (1.13+) checks" in done.stderr
    assert rebases(host) == []
