"""Hosts verify the image's signature themselves, whatever their skopeo, before a rebase.

rpm-ostree's `ostree-image-signed:` hands the fetch to skopeo's image proxy,
which checks policy.json only from skopeo 1.13 (containers/skopeo#2029,
coreos/rpm-ostree#4272); ostree-ext itself only refuses a policy whose default
accepts anything (contract sections 2 and 4). So before anything is staged the
host proves it, with its own trust: nestcustom reads its policy.json and
registries.d, and a script on the host fetches the manifest by digest (as the
host sees the registry), its simple signatures from the host's lookaside, and
runs `skopeo standalone-verify` (containers/image's own check: the key, the
manifest digest, the signed identity) with the keys the host's policy names
for the image's scope; the identity must be of the image's repository. Then
the host is rebased to that exact digest: `ostree-image-signed:` where its
skopeo enforces policy and its policy's default does not accept anything
(rpm-ostree checks once more), else `ostree-unverified-registry:`.
"""

from __future__ import annotations

import re

from nestcustom.containerfile.updater import VERIFIED_LOG as VERIFIED_LOG  # fleetstatus reads it
from nestcustom.containerfile.updater import verify_script
from nestcustom.deploy.hostfailures import HostFailed
from nestcustom.deploy.hostpolicy import TrustOptions, judge, lookaside
from nestcustom.deploy.hostrun import HostRun
from nestcustom.deploy.target import split_reference
from nestcustom.errors import NestcustomError
from nestcustom.image.trustpolicy import LABEL
from nestcustom.image.trustpolicy import own_scopes as own_scopes  # re-exported: tests, callers
from nestcustom.sanitize import clean

ENFORCING_SKOPEO = (1, 13)

# The host's check (containerfile/verify-signature.sh, the one the host-side updater ships):
# $1 REPO@DIGEST $2 digest $3 lookaside $4 repository $5 log, then key files or data:BASE64.
VERIFY = verify_script()


def trust_options(
    reference: str, labels: dict[str, str], signed: bool, unsigned: bool, bootstrap: bool
) -> TrustOptions:
    repository, _ = split_reference(reference)
    scopes = own_scopes(labels.get(LABEL, ""), repository)
    if scopes:
        reason = f"the image's signing: policy covers its own repository ({', '.join(scopes)})"
    else:
        reason = "--signed" if signed else "the image carries no signing policy for its repository"
    return TrustOptions(bool(scopes) or signed, reason, unsigned, bootstrap)


def _sections(text: str) -> dict[str, str]:
    """The =#nc: sections of the preflight's trust section (hoststatus.FACTS_SCRIPT)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("=#nc:"):
            current = sections.setdefault(line[5:].strip(), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def _skopeo_version(text: str) -> tuple[int, int] | None:
    found = re.search(r"(\d+)\.(\d+)", text)
    return (int(found.group(1)), int(found.group(2))) if found else None


def asked(run: HostRun, options: TrustOptions) -> bool:
    """Whether the host's trust step runs: the image asks for verification, or the host's
    policy requires a signature for its repository (an unreadable policy: yes, to say so).
    Otherwise the rollout is what it always was: no step, nothing in the report."""
    if options.required:
        return True
    assert run.facts is not None and run.target is not None
    facts = _sections(run.facts.trust)
    if "no-policy" in facts or "policy" not in facts:
        return False
    repository, _ = split_reference(run.target.pinned)
    try:
        return not judge(facts["policy"], repository, run.target.digest).accepts_anything
    except NestcustomError:
        return True


def check_trust(run: HostRun, options: TrustOptions) -> str:
    """The trust step: the host proves the target's signature, or the rollout stops here
    for it (nothing staged). Sets the reference to rebase to; returns the step's detail."""
    assert run.target is not None
    target = run.target
    repository, _ = split_reference(target.pinned)
    if options.unsigned:
        run.trust_note = "NOT verified (--unsigned)"
        return "signature NOT checked: --unsigned"
    assert run.facts is not None
    facts = _sections(run.facts.trust)
    if "skopeo" not in facts:
        raise NestcustomError(
            "the host did not say what it trusts", "re-run; is the host rebooting?"
        )
    version = _skopeo_version(facts.get("skopeo", ""))
    enforcing = version is not None and version >= ENFORCING_SKOPEO
    if "no-policy" in facts:
        judgement = None
    else:
        judgement = judge(facts.get("policy", ""), repository, target.digest)
    if (judgement is None or judgement.accepts_anything) and not options.required:
        return f"no signature asked for: neither the image nor the host's policy names {repository}"
    if judgement is None or judgement.accepts_anything:
        where = (
            "has no /etc/containers/policy.json"
            if judgement is None
            else (f"accepts any image of {repository} (policy scope {judgement.scope!r})")
        )
        if options.bootstrap:
            run.trust_note = f"bootstrapped: the host {where}; this image is NOT verified on it"
            run.ref_override = f"ostree-unverified-registry:{target.pinned}"
            run.conn.script(
                'mkdir -p "${2%/*}" && echo "$1 bootstrap -" >>"$2"',
                target.digest,
                VERIFIED_LOG,
                privileged=True,
                name="noting the bootstrap",
            )
            return f"trust bootstrapped: the host {where}; not verified on the host"
        raise HostFailed(
            f"cannot verify {repository} here: the host {where} ({options.reason})",
            "the first signed image of a host that trusts nothing yet goes with --bootstrap-trust "
            "(it brings the policy and key); --unsigned skips the check",
            failure="untrusted",
        )
    if judgement.rejects:
        raise HostFailed(
            f"the host's policy rejects {repository} (scope {judgement.scope!r})",
            "check the host's /etc/containers/policy.json",
            failure="untrusted",
        )
    if not judgement.gpg:
        if enforcing and not judgement.default_accepts_anything:
            run.ref_override = f"ostree-image-signed:docker://{target.pinned}"
            run.trust_note = "verified by rpm-ostree (ostree-image-signed:, skopeo enforces policy)"
            return f"{', '.join(judgement.kinds)} for {judgement.scope}: left to rpm-ostree (skopeo {version})"
        raise HostFailed(
            f"the host's policy asks {', '.join(judgement.kinds)} for {repository}, which only a "
            f"skopeo that enforces policy (1.13+) checks; this host has "
            f"{'.'.join(map(str, version)) if version else 'an unknown skopeo'}"
            + (" and a policy whose default accepts anything" if enforcing else ""),
            "sign with GPG (build --sign) and trust that key (signing: type gpg), which every host verifies",
            failure="untrusted",
        )
    files = {k.partition(" ")[2]: v for k, v in facts.items() if k.startswith("registries.d ")}
    url = lookaside(files, repository)
    if not url:
        raise HostFailed(
            f"the host has no lookaside for {repository} in /etc/containers/registries.d: it "
            "cannot find signatures",
            "the image's signing: writes one (lookaside:); or configure it on the host",
            failure="untrusted",
        )
    keys = [p for g in judgement.gpg for p in g.key_paths] + [
        "data:" + d for g in judgement.gpg for d in g.key_data
    ]
    result = run.conn.script(
        VERIFY,
        target.pinned,
        target.digest,
        url,
        repository,
        VERIFIED_LOG,
        *keys,
        privileged=True,
        check=False,
        timeout=300,
        name="verifying the signature",
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("==")]
    last = clean(lines[-1][2:]) if lines else f"the check ended with exit {result.returncode}"
    if not last.startswith("verified "):
        notes = [clean(line[7:]) for line in lines if line.startswith("==note ")]
        if last.startswith("unsigned "):
            count = int(last.split()[1] or 0)
            message = (
                f"{target.digest} is not signed by a key the host trusts for {repository}: "
                f"{count} signature(s) at {url}, none verifies"
                if count
                else f"{target.digest} has no signature at {url}"
            )
        else:
            message = f"the signature check failed: {last.removeprefix('error ')}"
        raise HostFailed(
            message + (f" ({notes[0]})" if notes else ""),
            "sign the image (build --push --sign KEY) with a key the host's policy names, or "
            "check the host's lookaside and keys; nothing was staged",
            failure="untrusted",
        )
    _, index, fingerprint, identity = last.split(" ", 3)
    signed_transport = enforcing and not judgement.default_accepts_anything
    run.ref_override = (
        f"ostree-image-signed:docker://{target.pinned}"
        if signed_transport
        else f"ostree-unverified-registry:{target.pinned}"
    )
    run.trust_note = (
        f"verified on the host: signature-{index} by {fingerprint[-16:]} for {identity}"
    )
    transport = (
        "ostree-image-signed:"
        if signed_transport
        else "ostree-unverified-registry: (skopeo "
        + (
            f"{'.'.join(map(str, version))} does not enforce policy"
            if version and not enforcing
            else "enforces, but the policy's default accepts anything"
            if enforcing
            else "version unknown"
        )
        + ")"
    )
    return f"signature verified on the host (key {fingerprint[-16:]}, {identity}); rebasing with {transport}"
