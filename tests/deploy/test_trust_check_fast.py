"""`deploy`'s trust step (deploy/trust.check_trust) against a host made of this machine:
the preflight's own trust commands and the signature check run for real (sh, skopeo,
gpg, curl) in a mount namespace whose /etc/containers is the host's (its policy.json,
registries.d and an insecure registries.conf.d), on a real registry and a lookaside
served over HTTP, with signatures made by nestcustom's signer. What the rollout gets:
the reference it rebases to, the note in its report, or the failure that stops it with
nothing staged. (The universe tests run the same step over SSH on emulated hosts.)"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from nestcustom import proc
from nestcustom.deploy.hostfailures import HostFailed
from nestcustom.deploy.hostpolicy import TrustOptions
from nestcustom.deploy.hostrun import HostRun
from nestcustom.deploy.hoststatus import FACTS_SCRIPT, HostFacts, HostStatus
from nestcustom.deploy.target import Target
from nestcustom.deploy.trust import VERIFIED_LOG, check_trust
from nestcustom.errors import NestcustomError
from tests.containerfile.test_updater_scripts import REPOSITORY, images, registry
from tests.containerfile.test_updater_signatures import Signed, enforcing_skopeo, signed
from tests.universe.registry import Registry

__all__ = ["images", "registry", "signed"]  # fixtures shared with the updater's tests

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0 or not Path("/etc/containers").is_dir(),
        reason="root and containers-common's /etc/containers (scripts/setup-host)",
    ),
    pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg (scripts/setup-host)"),
]

REQUIRED = TrustOptions(True, "the image's signing: policy covers its own repository", False, False)
# The preflight's trust commands, as FACTS_SCRIPT runs them on every host.
TRUST_FACTS = FACTS_SCRIPT[
    FACTS_SCRIPT.index("echo; echo ==trust") : FACTS_SCRIPT.index("echo ==cmdline")
]


@dataclass
class LocalConn:
    """A host's connection, run here: each script in a mount namespace with `etc` as its
    /etc/containers, `bin` first on PATH (a skopeo that reports another version)."""

    etc: Path
    bin: Path
    verified: Path  # where the host's VERIFIED_LOG is kept here
    scripts: list[str] = field(default_factory=list)

    def script(
        self, script: str, *args: str, privileged: bool = False, check: bool = True,
        timeout: float = 600, name: str = "a script",
    ) -> proc.Result:  # fmt: skip
        self.scripts.append(name)
        args = tuple(str(self.verified) if a == VERIFIED_LOG else a for a in args)
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        return proc.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" /etc/containers && shift && exec "$@"', "sh", str(self.etc),
             "sh", "-c", script, "sh", *args],
            env=env, check=check, timeout=timeout,
        )  # fmt: skip


@dataclass
class LocalRun:
    """What check_trust reads and writes of a HostRun."""

    conn: LocalConn
    target: Target
    facts: HostFacts | None = None
    ref_override: str | None = None
    trust_note: str | None = None


@dataclass(frozen=True)
class Host:
    etc: Path
    keys: Path
    make_run: Callable[[str], LocalRun]  # image name -> a run whose facts are read afresh


def policy(
    requirements: Sequence[Mapping[str, object]], default: str = "insecureAcceptAnything"
) -> str:
    return json.dumps(
        {"default": [{"type": default}], "transports": {"docker": {"SCOPE": requirements}}}
    )


def signed_by(path: Path) -> dict[str, object]:
    return {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(path)}


@pytest.fixture
def host(tmp_path: Path, registry: Registry, signed: Signed) -> Host:
    """A host whose policy asks the site key's signature for REGISTRY/nestos, with the
    lookaside in its registries.d: each test changes what it needs."""
    etc, keys, bin_dir = tmp_path / "etc", tmp_path / "keys", tmp_path / "bin"
    for directory in (etc / "registries.d", etc / "registries.conf.d", keys, bin_dir):
        directory.mkdir(parents=True)
    (etc / "registries.conf.d" / "local.conf").write_text(
        f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    shutil.copy(signed.public["site"], keys / "site.asc")
    scope = f"{registry.host}/nestos"
    (etc / "policy.json").write_text(policy([signed_by(keys / "site.asc")]).replace("SCOPE", scope))
    (etc / "registries.d" / "site.yaml").write_text(
        f"docker:\n  {scope}:\n    sigstore: {signed.lookaside}\n"
    )
    conn = LocalConn(etc, bin_dir, tmp_path / "verified")

    def make_run(name: str) -> LocalRun:
        digest = signed.digests[name]
        out = conn.script(TRUST_FACTS, name="the preflight").stdout
        trust = out.split("==trust\n", 1)[1]
        facts = HostFacts(HostStatus((), None, None), "x86_64", "m", "b", (2022, 16), trust=trust)
        target = Target(f"{registry.host}/{REPOSITORY}@{digest}", digest, "amd64")
        return LocalRun(conn, target, facts)

    return Host(etc, keys, make_run)


def check(run: LocalRun, options: TrustOptions = REQUIRED) -> str:
    return check_trust(cast(HostRun, run), options)


def refused(run: LocalRun, options: TrustOptions = REQUIRED) -> HostFailed:
    with pytest.raises(HostFailed) as caught:
        check(run, options)
    assert caught.value.failure == "untrusted"
    assert run.ref_override is None  # nothing to rebase to: nothing is staged
    return caught.value


def test_a_signature_by_the_policys_key_is_verified_and_noted(
    host: Host, registry: Registry, signed: Signed
) -> None:
    run = host.make_run("two")
    detail = check(run)
    fingerprint = signed.fingerprints["site"]
    identity = f"{registry.host}/{REPOSITORY}:two"
    assert detail == (
        f"signature verified on the host (key {fingerprint[-16:]}, {identity}); rebasing with "
        "ostree-unverified-registry: (skopeo 1.9 does not enforce policy)"
    )
    assert run.ref_override == f"ostree-unverified-registry:{run.target.pinned}"
    assert (
        run.trust_note == f"verified on the host: signature-1 by {fingerprint[-16:]} for {identity}"
    )
    assert run.conn.verified.read_text() == f"{signed.digests['two']} {fingerprint} {identity}\n"


@pytest.mark.parametrize(
    ("default", "ref", "said"),
    [
        ("reject", "ostree-image-signed:docker://", "ostree-image-signed:"),
        (
            "insecureAcceptAnything",
            "ostree-unverified-registry:",
            "ostree-unverified-registry: (skopeo enforces, but the policy's default accepts anything)",
        ),
    ],
)
def test_rpm_ostree_checks_again_where_skopeo_enforces_and_the_default_rejects(
    host: Host, default: str, ref: str, said: str
) -> None:
    text = json.loads((host.etc / "policy.json").read_text())
    text["default"] = [{"type": default}]
    (host.etc / "policy.json").write_text(json.dumps(text))
    enforcing_skopeo(host.etc.parent / "bin")
    run = host.make_run("two")
    assert check(run).endswith(f"; rebasing with {said}")
    assert run.ref_override == f"{ref}{run.target.pinned}"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("three", "{digest} has no signature at {url}"),
        ("other", "{digest} is not signed by a key the host trusts for {repo}: 1 signature(s) at {url}, none verifies"),
        ("elsewhere", "none verifies (signature-1 is signed for {registry}/nestos/another:elsewhere, another repository)"),
    ],
)  # fmt: skip
def test_a_digest_that_does_not_verify_stops_the_host_with_nothing_staged(
    host: Host, registry: Registry, signed: Signed, name: str, said: str
) -> None:
    run = host.make_run(name)
    failed = refused(run)
    assert said.format(
        digest=signed.digests[name], url=signed.lookaside,
        repo=f"{registry.host}/{REPOSITORY}", registry=registry.host,
    ) in failed.message  # fmt: skip
    assert "nothing was staged" in (failed.hint or "")
    assert not run.conn.verified.exists()


def test_key_data_in_the_policy_verifies_too(host: Host, registry: Registry) -> None:
    data = base64.b64encode((host.keys / "site.asc").read_bytes()).decode()
    requirement = {"type": "signedBy", "keyType": "GPGKeys", "keyData": data}
    (host.etc / "policy.json").write_text(
        policy([requirement]).replace("SCOPE", f"{registry.host}/nestos")
    )
    assert check(host.make_run("two")).startswith("signature verified on the host")


def test_a_key_the_policy_names_but_the_host_lacks_is_said(host: Host) -> None:
    (host.keys / "site.asc").unlink()
    failed = refused(host.make_run("two"))
    assert (
        failed.message == f"the signature check failed: the key {host.keys / 'site.asc'} is missing"
    )


def test_a_lookaside_that_does_not_answer_is_said(host: Host, registry: Registry) -> None:
    (host.etc / "registries.d" / "site.yaml").write_text(
        f"docker:\n  {registry.host}/nestos:\n    sigstore: http://127.0.0.1:9/sigs\n"
    )
    failed = refused(host.make_run("two"))
    assert failed.message.startswith(
        "the signature check failed: the lookaside answered 000 for http://127.0.0.1:9/sigs/"
    )


def test_no_lookaside_for_the_repository_is_said(host: Host, registry: Registry) -> None:
    (host.etc / "registries.d" / "site.yaml").unlink()
    failed = refused(host.make_run("two"))
    assert failed.message == (
        f"the host has no lookaside for {registry.host}/{REPOSITORY} in "
        "/etc/containers/registries.d: it cannot find signatures"
    )


def test_a_policy_that_rejects_the_repository_is_said(host: Host, registry: Registry) -> None:
    (host.etc / "policy.json").write_text(
        policy([{"type": "reject"}]).replace("SCOPE", f"{registry.host}/nestos")
    )
    failed = refused(host.make_run("two"))
    assert (
        failed.message
        == f"the host's policy rejects {registry.host}/{REPOSITORY} (scope '{registry.host}/nestos')"
    )


@pytest.mark.parametrize(
    ("enforcing", "default"), [(False, "reject"), (True, "insecureAcceptAnything")]
)
def test_sigstore_is_left_to_rpm_ostree_only_where_skopeo_enforces_a_rejecting_policy(
    host: Host, registry: Registry, enforcing: bool, default: str
) -> None:
    sigstore = {"type": "sigstoreSigned", "keyPath": str(host.keys / "cosign.pub")}
    scope = f"{registry.host}/nestos"
    (host.etc / "policy.json").write_text(policy([sigstore], default).replace("SCOPE", scope))
    if enforcing:
        enforcing_skopeo(host.etc.parent / "bin")
    failed = refused(host.make_run("two"))
    assert (
        "which only a skopeo that enforces policy (1.13+) checks; this host has" in failed.message
    )
    assert failed.message.endswith(
        " and a policy whose default accepts anything" if enforcing else "this host has 1.9"
    )
    (host.etc / "policy.json").write_text(policy([sigstore], "reject").replace("SCOPE", scope))
    enforcing_skopeo(host.etc.parent / "bin")
    run = host.make_run("two")
    assert check(run) == f"sigstoreSigned for {scope}: left to rpm-ostree (skopeo (1, 13))"
    assert run.ref_override == f"ostree-image-signed:docker://{run.target.pinned}"


@pytest.mark.parametrize("bootstrap", [False, True])
def test_a_host_without_a_policy_is_refused_unless_bootstrapped(
    host: Host, registry: Registry, signed: Signed, bootstrap: bool
) -> None:
    (host.etc / "policy.json").unlink()
    options = TrustOptions(True, "--signed", False, bootstrap)
    run = host.make_run("two")
    if not bootstrap:
        failed = refused(run, options)
        assert failed.message == (
            f"cannot verify {registry.host}/{REPOSITORY} here: the host has no "
            "/etc/containers/policy.json (--signed)"
        )
        assert "--bootstrap-trust" in (failed.hint or "")
        return
    assert check(run, options) == (
        "trust bootstrapped: the host has no /etc/containers/policy.json; not verified on the host"
    )
    assert run.ref_override == f"ostree-unverified-registry:{run.target.pinned}"
    assert run.conn.verified.read_text() == f"{signed.digests['two']} bootstrap -\n"


def test_a_host_that_accepts_anything_needs_no_signature_unless_the_image_asks(
    host: Host, registry: Registry
) -> None:
    (host.etc / "policy.json").write_text(policy([]).replace('"SCOPE": []', '"x": []'))
    run = host.make_run("three")
    optional = TrustOptions(False, "the image carries no signing policy", False, False)
    assert check(run, optional) == (
        f"no signature asked for: neither the image nor the host's policy names {registry.host}/{REPOSITORY}"
    )
    assert run.ref_override is None
    failed = refused(run)
    assert (
        f"accepts any image of {registry.host}/{REPOSITORY} (policy scope 'default')"
        in failed.message
    )


def test_unsigned_skips_the_check_and_says_so(host: Host) -> None:
    run = host.make_run("three")
    assert check(run, TrustOptions(True, "x", True, False)) == "signature NOT checked: --unsigned"
    assert run.trust_note == "NOT verified (--unsigned)"
    assert run.conn.scripts == ["the preflight"]  # nothing ran on the host for it


def test_facts_without_skopeos_section_are_refused(host: Host) -> None:
    run = host.make_run("two")
    assert run.facts is not None
    run.facts = HostFacts(run.facts.status, "x86_64", "m", "b", (2022, 16), trust="=#nc:policy\n{}")
    with pytest.raises(NestcustomError, match="the host did not say what it trusts"):
        check(run)
