"""What `nestcustom promote` checks of a digest's signature, fast and without podman: images
carrying their policy.json, keys and registries.d in their layers (written from dicts of
files, pushed by skopeo to a real Distribution registry), real gpg keys and simple
signatures made by nestcustom's signer into a lookaside served over HTTP, checked by
promotetrust.check as promote calls it (real skopeo standalone-verify), and through the CLI.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.fleet.promotetrust import NO_POLICY, SIGN_HINT, Trust, check
from nestcustom.image.gpgkey import generate
from nestcustom.image.signing import Signer, SignOptions, signing_session
from nestcustom.image.trustpolicy import LABEL
from tests.fleet.test_promote_registry import serving
from tests.fleet.test_promote_signed_universe import serve
from tests.fleet.trustimages import (
    GARBAGE,
    PKI,
    POLICY,
    REGISTRIES,
    Store,
    policy,
    push,
    registries,
    signed_by,
)
from tests.universe.registry import run_registry

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gpg", "skopeo", "docker-registry")),
    reason="gpg, skopeo and docker-registry (scripts/setup-host)",
)

SITE_KEY = f"/{PKI}/site.pub.asc"
DARK = "http://127.0.0.1:1/"  # a lookaside that does not answer


@dataclass(frozen=True)
class World:
    host: str  # the registry, 127.0.0.1:PORT
    store: Store
    url: str  # the lookaside over HTTP, ending in /
    public: dict[str, bytes]  # key name -> its armored public key
    fingerprints: dict[str, str]
    signers: dict[str, Signer]
    work: Path

    def image(
        self, name: str, layers: list[dict[str, bytes] | bytes], label: str | None = None
    ) -> tuple[str, str]:
        """REG/promote/NAME (and its digest) of `layers`, labelled for REG/promote."""
        digest = push(self.host, self.work / f"oci-{uuid.uuid4().hex}", f"promote/{name}:v1",
                      layers, f"gpg:{self.host}/promote" if label is None else label)  # fmt: skip
        return f"{self.host}/promote/{name}", digest

    def trust(
        self,
        scopes: dict[str, list[dict[str, Any]]] | None = None,
        *,
        keys: dict[str, str] | None = None,
        lookasides: dict[str, str] | None = None,
    ) -> dict[str, bytes]:
        """A layer of trust files: by default REG/promote signed by site, its lookaside ours."""
        keys = {SITE_KEY: "site"} if keys is None else keys
        files = {POLICY: policy(scopes or {f"{self.host}/promote": [signed_by(SITE_KEY)]})}
        files |= {path.lstrip("/"): self.public[name] for path, name in keys.items()}
        files[REGISTRIES] = registries(lookasides or {f"{self.host}/promote": self.url})
        return files

    def sign(self, key: str, image: str, digest: str, identity: str | None = None) -> str:
        return self.store.sign(self.signers[key], image, digest, identity or f"{image}:v1")

    def signature_url(self, image: str, digest: str, number: int) -> str:
        path = image.removeprefix(self.host + "/")
        return f"{self.url}{path}@sha256={digest.split(':')[1]}/signature-{number}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("promotetrust")
    keys = {n: generate(work / n, f"{n} <{n}@nc.invalid>", None) for n in ("site", "other")}
    (work / "lookaside").mkdir()
    with contextlib.ExitStack() as stack:
        registry = stack.enter_context(run_registry(work / "registry"))
        url = stack.enter_context(serve(work / "lookaside"))
        signers = {
            n: stack.enter_context(signing_session(SignOptions(k[0]))) for n, k in keys.items()
        }
        yield World(
            registry.host,
            Store(work / "lookaside", registry.host),
            url,
            {n: k[1].read_bytes() for n, k in keys.items()},
            {n: k[2] for n, k in keys.items()},
            signers,
            work,
        )


def checked(image: str, digest: str, *, unsigned: bool = False, label: str = "") -> Trust:
    host = image.split("/")[0]
    return check(image, digest, {LABEL: label or f"gpg:{host}/promote"}, unsigned=unsigned,
                 tls_verify=False)  # fmt: skip


def refused(image: str, digest: str, kind: type[NestcustomError] = BadInputError) -> str:
    """The message of check's refusal (exactly of class `kind`)."""
    with pytest.raises(NestcustomError) as caught:
        checked(image, digest)
    assert type(caught.value) is kind, caught.value.message
    return caught.value.message


def version(name: str) -> dict[str, bytes]:
    return {"usr/share/nc-version": name.encode()}


def test_a_digest_signed_by_the_policys_key_passes(world: World) -> None:
    image, digest = world.image("signed", [version("signed"), world.trust()])
    assert world.sign("site", image, digest) == "signature-1"
    site = world.fingerprints["site"]
    assert checked(image, digest) == Trust(
        True,
        f"verified: signature-1 by {site[-16:]} for {image}:v1",
        site,
        world.signature_url(image, digest, 1),
    )


def test_the_signature_that_verifies_is_reported_among_several(world: World) -> None:
    """Two keys in the policy (the other one first); the first signature is by the right key
    for another repository, the second verifies."""
    image, digest = world.image("several", [world.trust(
        {f"{world.host}/promote": [signed_by(f"/{PKI}/a.asc", f"/{PKI}/b.asc")]},
        keys={f"/{PKI}/a.asc": "other", f"/{PKI}/b.asc": "site"},
    )])  # fmt: skip
    world.sign("site", image, digest, f"{world.host}/promote/elsewhere:v1")
    world.sign("site", image, digest)
    trust = checked(image, digest)
    site = world.fingerprints["site"]
    assert (trust.checked, trust.fingerprint) == (True, site)
    assert trust.note == f"verified: signature-2 by {site[-16:]} for {image}:v1"
    assert trust.signature == world.signature_url(image, digest, 2)


def test_an_unsigned_digest_is_refused(world: World) -> None:
    image, digest = world.image("unsigned", [world.trust()])
    with pytest.raises(BadInputError) as caught:
        checked(image, digest)
    assert caught.value.message == (
        f"{image}@{digest} is not signed: no signature at {world.signature_url(image, digest, 1)}"
    )
    assert caught.value.hint == SIGN_HINT


def test_another_keys_signature_is_refused(world: World) -> None:
    image, digest = world.image("otherkey", [world.trust()])
    world.sign("other", image, digest)
    assert refused(image, digest) == (
        f"{image}@{digest} is not signed by a key the image trusts for {image} "
        f"({world.fingerprints['site'][-16:]}): 1 signature(s) at {world.url.rstrip('/')}, "
        "none verifies"
    )


def test_a_signature_for_another_repository_is_refused(world: World) -> None:
    image, digest = world.image("copy", [world.trust()])
    world.sign("site", image, digest, f"{world.host}/promote/copyist:v1")
    message = refused(image, digest)
    assert message.endswith(
        f"1 signature(s) at {world.url.rstrip('/')}, none verifies (signature-1 is signed "
        f"for {world.host}/promote/copyist:v1, another repository)"
    )


def test_a_lookaside_that_does_not_answer_is_a_failure_not_a_refusal(world: World) -> None:
    image, digest = world.image("dark", [world.trust(lookasides={f"{world.host}/promote": DARK})])
    message = refused(image, digest, NestcustomError)
    assert message.startswith(f"cannot read the signatures of {image}@{digest}: cannot reach ")
    assert f"{DARK}promote/dark@sha256={digest.split(':')[1]}/signature-1" in message


def test_a_label_that_does_not_cover_the_repository_is_no_check(world: World) -> None:
    image, digest = world.image("notcovered", [world.trust()], label="gpg:elsewhere.invalid/x")
    assert check(image, digest, {LABEL: "gpg:elsewhere.invalid/x"}, unsigned=False,
                 tls_verify=False) == Trust(False, NO_POLICY)  # fmt: skip
    assert check(image, digest, {}, unsigned=False, tls_verify=False) == Trust(False, NO_POLICY)
    # A scope that merely starts like the repository's path does not cover it.
    near = f"gpg:{world.host}/promote/notcov"
    assert check(image, digest, {LABEL: near}, unsigned=False, tls_verify=False) == Trust(
        False, NO_POLICY
    )


def test_a_policy_whose_scope_does_not_cover_the_repository_is_no_check(world: World) -> None:
    files = world.trust() | {
        POLICY: policy({f"{world.host}/other": [signed_by(SITE_KEY)]}, "insecureAcceptAnything")
    }
    image, digest = world.image("open", [files])
    assert checked(image, digest) == Trust(
        False, f"unsigned: the image's policy accepts {image} without a signature (scope 'default')"
    )


def test_a_policy_that_rejects_or_asks_sigstore_is_refused(world: World) -> None:
    scope = f"{world.host}/promote"
    image, digest = world.image("rejects", [world.trust({scope: [{"type": "reject"}]})])
    assert refused(image, digest) == (
        f"{image}@{digest}: the image's own policy rejects its repository (scope '{scope}')"
    )
    sigstore = {"type": "sigstoreSigned", "keyPath": "/etc/pki/cosign.pub"}
    image, digest = world.image("sigstore", [world.trust({scope: [sigstore]})])
    assert refused(image, digest) == (
        f"{image}@{digest}: the image's own policy asks sigstoreSigned for it, which only GPG "
        "signatures are checked with here"
    )


def test_key_data_in_the_policy_instead_of_a_key_file(world: World) -> None:
    data = base64.b64encode(world.public["site"]).decode()
    files = world.trust({f"{world.host}/promote": [signed_by(data=data)]}, keys={})
    image, digest = world.image("keydata", [files])
    world.sign("site", image, digest)
    trust = checked(image, digest)
    assert (trust.checked, trust.fingerprint) == (True, world.fingerprints["site"])

    files = world.trust({f"{world.host}/promote": [signed_by(data="not base64!")]}, keys={})
    image, digest = world.image("badkeydata", [files])
    assert refused(image, digest) == (
        f"{image}@{digest}: the image's policy has a keyData that is not base64"
    )


def test_a_key_file_the_policy_names_but_the_image_lacks(world: World) -> None:
    image, digest = world.image("nokey", [world.trust(keys={})])
    assert refused(image, digest) == (
        f"{image}@{digest}: the image's policy names the key {SITE_KEY}, which the image "
        "does not hold"
    )
    # The key once there, deleted by an upper layer's whiteout.
    gone = {f"{PKI}/.wh.site.pub.asc": b""}
    image, digest = world.image("keygone", [world.trust(), gone])
    world.sign("site", image, digest)
    assert "which the image does not hold" in refused(image, digest)


def test_a_whiteout_in_an_upper_layer_deletes_the_policy(world: World) -> None:
    image, digest = world.image(
        "nopolicy", [world.trust(), {"etc/containers/.wh.policy.json": b""}]
    )
    world.sign("site", image, digest)
    with pytest.raises(BadInputError) as caught:
        checked(image, digest)
    assert caught.value.message == (
        f"{image}@{digest}: its label {LABEL} names gpg:{world.host}/promote, but it has no "
        "/etc/containers/policy.json"
    )
    assert caught.value.hint == "rebuild the image from its recipe (signing: writes the policy)"


def test_an_upper_layers_policy_is_the_one_checked(world: World) -> None:
    lower = world.trust(keys={SITE_KEY: "other"})  # the same path, another key, lower down
    image, digest = world.image("upper", [lower, version("upper"), world.trust()])
    world.sign("site", image, digest)
    assert checked(image, digest).fingerprint == world.fingerprints["site"]


def test_the_most_specific_scope_wins(world: World) -> None:
    host, other = world.host, f"/{PKI}/other.pub.asc"
    scopes = {
        host: [{"type": "reject"}],
        f"{host}/promote": [signed_by(other)],
        f"{host}/promote/specific": [signed_by(SITE_KEY)],
        f"{host}/promote/specific/deeper": [signed_by(other)],
    }
    lookasides = {host: DARK, f"{host}/promote/specific": world.url, f"{host}/promote": DARK}
    files = world.trust(scopes, keys={SITE_KEY: "site", other: "other"}, lookasides=lookasides)
    image, digest = world.image("specific", [files])
    world.sign("other", image, digest)
    world.sign("site", image, digest)
    trust = checked(image, digest)
    assert trust.note == (
        f"verified: signature-2 by {world.fingerprints['site'][-16:]} for {image}:v1"
    )


def test_a_registries_d_without_a_lookaside_for_the_repository(world: World) -> None:
    files = world.trust(lookasides={f"{world.host}/elsewhere": world.url})
    image, digest = world.image("nolookaside", [files])
    assert refused(image, digest) == (
        f"{image}@{digest}: the image's /etc/containers/registries.d names no lookaside for "
        f"{image}: no place to find its signatures"
    )


def test_reading_stops_once_the_repositorys_lookaside_is_settled(world: World) -> None:
    """A bottom layer that is not a tar is never read when the layers above settle the trust
    files; it is read (and said) when they name only a less specific lookaside scope."""
    image, digest = world.image("settled", [GARBAGE, world.trust(
        lookasides={f"{world.host}/promote/settled": world.url})])  # fmt: skip
    world.sign("site", image, digest)
    assert checked(image, digest).checked
    image, digest = world.image("unsettled", [GARBAGE, world.trust()])
    world.sign("site", image, digest)
    assert "not a readable tar layer" in refused(image, digest, NestcustomError)


def test_unsigned_skips_the_check_and_says_so(world: World) -> None:
    image, digest = world.image("skipped", [world.trust()])
    why = f"although the image's signing policy covers its repository (gpg:{world.host}/promote)"
    assert checked(image, digest, unsigned=True) == Trust(
        False,
        f"NOT verified (--unsigned), {why}",
        warning=f"warning: --unsigned: the signature is NOT checked, {why}",
    )
    both = f"gpg:{world.host}/promote gpg:{world.host}/promote/skipped gpg:{world.host}/other"
    trust = checked(image, digest, unsigned=True, label=both)
    assert trust.note == (
        "NOT verified (--unsigned), although the image's signing policy covers its repository "
        f"(gpg:{world.host}/promote, gpg:{world.host}/promote/skipped)"
    )


def promote(cwd: Path, pinned: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", "promote", "--no-tls-verify", "--ring", "canary",
         pinned, *options],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_promote_moves_a_signed_digest_and_refuses_an_unsigned_one(
    world: World, tmp_path: Path
) -> None:
    image, signed = world.image("cli", [version("one"), world.trust()])
    world.sign("site", image, signed)
    done = promote(tmp_path, f"{image}@{signed}", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signature"] == {
        "verified": True,
        "note": f"verified: signature-1 by {world.fingerprints['site'][-16:]} for {image}:v1",
        "fingerprint": world.fingerprints["site"],
        "url": world.signature_url(image, signed, 1),
    }
    assert serving(f"{image}:ring-canary") == signed

    _, unsigned = world.image("cli", [version("two"), world.trust()])
    journal = (tmp_path / "promotions.jsonl").read_text()
    done = promote(tmp_path, f"{image}@{unsigned}")
    assert done.returncode == 2
    assert f"{image}@{unsigned} is not signed: no signature at" in done.stderr
    assert "Traceback" not in done.stderr
    assert serving(f"{image}:ring-canary") == signed
    assert (tmp_path / "promotions.jsonl").read_text() == journal


def test_a_refusal_names_every_key_the_policy_trusts(world: World) -> None:
    files = world.trust(
        {f"{world.host}/promote": [signed_by(f"/{PKI}/a.asc", f"/{PKI}/b.asc")]},
        keys={f"/{PKI}/a.asc": "other", f"/{PKI}/b.asc": "site"},
    )
    image, digest = world.image("twokeys", [files])
    world.sign("site", image, digest, f"{world.host}/promote/elsewhere:v1")
    other, site = world.fingerprints["other"][-16:], world.fingerprints["site"][-16:]
    assert refused(image, digest) == (
        f"{image}@{digest} is not signed by a key the image trusts for {image} ({other}, {site}): "
        f"1 signature(s) at {world.url.rstrip('/')}, none verifies (signature-1 is signed for "
        f"{world.host}/promote/elsewhere:v1, another repository)"
    )


def test_keys_in_several_layers_are_all_read(world: World) -> None:
    """The key the signature needs is in a lower layer than the policy and the other key."""
    files = world.trust(
        {f"{world.host}/promote": [signed_by(f"/{PKI}/a.asc", f"/{PKI}/b.asc")]},
        keys={f"/{PKI}/a.asc": "other"},
        lookasides={f"{world.host}/promote/spread": world.url},
    )
    image, digest = world.image("spread", [{f"{PKI}/b.asc": world.public["site"]}, files])
    world.sign("site", image, digest)
    assert checked(image, digest).fingerprint == world.fingerprints["site"]


def test_a_key_path_is_read_as_the_filesystem_path_it_names(world: World) -> None:
    roundabout = f"/{PKI}/./../containers//site.pub.asc"
    files = world.trust({f"{world.host}/promote": [signed_by(roundabout)]})
    image, digest = world.image("roundabout", [files])
    world.sign("site", image, digest)
    assert checked(image, digest).fingerprint == world.fingerprints["site"]


def test_key_data_with_characters_outside_base64_is_refused_as_such(world: World) -> None:
    files = world.trust({f"{world.host}/promote": [signed_by(data="QUJD!")]}, keys={})
    image, digest = world.image("junkkeydata", [files])
    assert refused(image, digest) == (
        f"{image}@{digest}: the image's policy has a keyData that is not base64"
    )


def test_a_key_file_that_is_not_a_key_is_refused(world: World) -> None:
    files = world.trust() | {SITE_KEY.lstrip("/"): b"-----BEGIN NOTHING-----\n"}
    image, digest = world.image("notakey", [files])
    world.sign("site", image, digest)
    assert refused(image, digest).startswith(
        f"{image}@{digest}: a key the image's policy names is not usable: "
    )


def test_a_signature_that_is_not_one_is_passed_over(world: World) -> None:
    image, digest = world.image("junksig", [world.trust()])
    directory = world.store.root / f"promote/junksig@sha256={digest.split(':')[1]}"
    directory.mkdir(parents=True)
    (directory / "signature-1").write_bytes(b"not an OpenPGP message")
    world.sign("site", image, digest)
    assert checked(image, digest).signature == world.signature_url(image, digest, 2)


def test_promote_unsigned_moves_an_unsigned_digest_loudly(world: World, tmp_path: Path) -> None:
    image, digest = world.image("cliunsigned", [version("one"), world.trust()])
    done = promote(tmp_path, f"{image}@{digest}", "--unsigned")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(
        "warning: --unsigned: the signature is NOT checked, although the image's signing "
        f"policy covers its repository (gpg:{world.host}/promote)\n"
    )
    assert serving(f"{image}:ring-canary") == digest
    row = json.loads((tmp_path / "promotions.jsonl").read_text().splitlines()[-1])
    assert row["after"] == digest
