"""How a host's trust is read (policy.json scopes, registries.d lookaside) and when a rollout
asks hosts for a signature: the pure parts of deploy/trust.py and deploy/hostpolicy.py."""

from __future__ import annotations

import json

import pytest

from nestcustom.deploy.fleetstatus import verification
from nestcustom.deploy.hostpolicy import judge, lookaside, scope_candidates
from nestcustom.deploy.hoststatus import Deployment
from nestcustom.deploy.trust import own_scopes, trust_options

REPO = "reg.example.com:5000/site/web"
DIGEST = "sha256:" + "a" * 64


def policy(docker: dict[str, object] | None = None, default: str = "insecureAcceptAnything") -> str:
    return json.dumps({"default": [{"type": default}], "transports": {"docker": docker or {}}})


def signed_by(path: str) -> list[dict[str, str]]:
    return [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": path}]


def test_scope_candidates_go_from_the_digest_to_wildcards() -> None:
    assert scope_candidates(REPO, DIGEST) == [
        f"{REPO}@{DIGEST}",
        REPO,
        "reg.example.com:5000/site",
        "reg.example.com:5000",
        "*.example.com",
        "*.com",
    ]


@pytest.mark.parametrize(
    ("docker", "scope", "keys"),
    [
        (
            {"reg.example.com:5000/site": signed_by("/k/site")},
            "reg.example.com:5000/site",
            ("/k/site",),
        ),
        (  # the most specific scope wins
            {"reg.example.com:5000": signed_by("/k/reg"), REPO: signed_by("/k/web")},
            REPO,
            ("/k/web",),
        ),
        ({"*.example.com": signed_by("/k/wild")}, "*.example.com", ("/k/wild",)),
        ({"": signed_by("/k/any")}, "", ("/k/any",)),  # the transport's default
        ({"other.example.com": signed_by("/k/o")}, "default", ()),  # the policy's default
    ],
)
def test_the_requirement_of_the_most_specific_scope_applies(
    docker: dict[str, object], scope: str, keys: tuple[str, ...]
) -> None:
    judgement = judge(policy({"x": [], **docker}), REPO, DIGEST)
    assert judgement.scope == scope
    assert tuple(p for g in judgement.gpg for p in g.key_paths) == keys
    assert judgement.accepts_anything is (not keys)
    assert judgement.default_accepts_anything


def test_a_rejecting_default_and_key_data_are_read() -> None:
    text = json.dumps(
        {
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {
                    REPO: [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "QUJD"}],
                }
            },
        }
    )
    judgement = judge(text, REPO, DIGEST)
    assert judgement.gpg[0].key_data == ("QUJD",) and not judgement.default_accepts_anything
    assert judge(text, "other.example.com/x", DIGEST).rejects


def test_lookaside_follows_registries_d_scopes_and_both_key_names() -> None:
    files = {
        "a.yaml": "default-docker:\n  lookaside: https://default.example/\n",
        "b.yaml": "docker:\n  reg.example.com:5000/site:\n    sigstore: https://site.example/sigs\n",
    }
    assert lookaside(files, REPO) == "https://site.example/sigs"
    assert lookaside(files, "other.example.com/x") == "https://default.example/"
    assert lookaside({}, REPO) is None


def test_the_image_asks_for_verification_only_for_its_own_repository() -> None:
    label = "gpg:reg.example.com:5000/site sigstore:quay.io/other"
    assert own_scopes(label, REPO) == ["gpg:reg.example.com:5000/site"]
    assert own_scopes(label, "reg.example.com:5000/sitex/web") == []
    asked = trust_options(f"{REPO}:v1", {"io.nestcustom.signing": label}, False, False, False)
    assert asked.required and "covers its own repository" in asked.reason
    plain = trust_options(f"{REPO}:v1", {}, False, False, False)
    assert not plain.required
    assert trust_options(f"{REPO}:v1", {}, True, False, False).required  # --signed


def deployment(reference: str, digest: str | None) -> Deployment:
    return Deployment("id", "c", True, False, None, reference, digest, None)


def test_status_says_which_reference_is_verified() -> None:
    log = f"{'sha256:' + 'b' * 64} bootstrap -\n{DIGEST} ABCDEF0123456789ABCDEF {REPO}:v1\n"
    signed = deployment(f"ostree-image-signed:docker://{REPO}@{DIGEST}", DIGEST)
    assert verification(signed, "")["verification"] == "ostree-image-signed: (rpm-ostree checks it)"
    proven = verification(deployment(f"ostree-unverified-registry:{REPO}@{DIGEST}", DIGEST), log)
    assert proven == {
        "verified": True,
        "verification": "signature verified by nestcustom deploy (key 0123456789ABCDEF)",
    }
    booted = deployment("ostree-unverified-registry:x", "sha256:" + "b" * 64)
    assert verification(booted, log) == {
        "verified": False,
        "verification": "trust bootstrapped: NOT verified",
    }
    assert (
        verification(deployment("ostree-unverified-registry:x", "sha256:" + "c" * 64), log)[
            "verification"
        ]
        == "unverified"
    )


def test_the_trust_step_runs_where_the_image_or_the_host_asks() -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from nestcustom.deploy.hostpolicy import TrustOptions
    from nestcustom.deploy.target import Target
    from nestcustom.deploy.trust import asked

    target = Target(f"{REPO}@{DIGEST}", DIGEST, "x86_64")

    def run(trust: str) -> Any:
        return cast(Any, SimpleNamespace(facts=SimpleNamespace(trust=trust), target=target))

    quiet = TrustOptions(required=False, reason="")
    requiring = "=#nc:policy\n" + policy({"reg.example.com:5000/site": signed_by("/k")})
    assert asked(run(requiring), quiet)
    assert not asked(run("=#nc:policy\n" + policy()), quiet)  # accepts anything: as before
    assert not asked(run("=#nc:no-policy\n=#nc:skopeo\n"), quiet)
    assert asked(run("=#nc:policy\nnot json"), quiet)  # said, not ignored
    assert asked(run("=#nc:policy\n" + policy()), TrustOptions(required=True, reason="label"))
