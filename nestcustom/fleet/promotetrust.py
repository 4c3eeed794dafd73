"""Before a ring moves: a digest of an image that carries a signing policy must be signed.

An image built from a recipe with `signing:` holds the policy hosts will verify
the next image with (policy.json, its keys under /etc/pki/containers/, the
lookaside in registries.d) and names its scopes in the io.nestcustom.signing
label. A ring moved to an unsigned digest of such an image would be refused by
every host that follows it, so promote checks first, with the image's own
files read from the registry (not the controller's trust, which may be none):
the signatures stored for the digest in the image's lookaside are verified by
`skopeo standalone-verify` with the image's keys, in a throwaway keyring, and
the signed identity must be of the image's repository. An image without a
policy for its own repository is promoted as before, and says so.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import posixpath
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from nestcustom import proc
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.image.distribution import Repository, split_name
from nestcustom.image.gpgkey import keyring
from nestcustom.image.imagefiles import read_files, registry_layers
from nestcustom.image.lookaside import SignatureStore
from nestcustom.image.trustpolicy import LABEL, judge, lookaside, own_scopes, scope_candidates

POLICY = "/etc/containers/policy.json"
REGISTRIES_D = "/etc/containers/registries.d"
NO_POLICY = "unsigned: the image carries no signing policy for its repository"
SIGN_HINT = (
    "sign it with the key the image trusts (nestcustom build --push --sign KEY), or, knowing "
    "hosts following the ring will refuse it, promote with --unsigned; nothing was moved"
)


@dataclass(frozen=True)
class Trust:
    """What promote checked of the digest's signature, for the output."""

    checked: bool  # a signature was verified
    note: str  # in words, for text and JSON output
    fingerprint: str | None = None
    signature: str | None = None  # the URL of the signature that verified
    warning: str | None = None  # said on stderr whatever the output format


def check(
    image: str, digest: str, labels: Mapping[str, str], *, unsigned: bool, tls_verify: bool
) -> Trust:
    """The digest's signature where the image carries a policy for its repository.

    Refusals raise: BadInputError (2) for a digest that is not signed as its image asks
    (or an image whose trust files are broken), NestcustomError (1) for a lookaside or
    registry that does not answer. `unsigned` skips the check (the caller warns).
    """
    scopes = own_scopes(labels.get(LABEL, ""), image)
    if not scopes:
        return Trust(False, NO_POLICY)
    if unsigned:
        why = f"although the image's signing policy covers its repository ({', '.join(scopes)})"
        return Trust(
            False,
            f"NOT verified (--unsigned), {why}",
            warning=f"warning: --unsigned: the signature is NOT checked, {why}",
        )
    repository = Repository(image, tls_verify=tls_verify)
    layers = registry_layers(repository, digest)
    where = f"{image}@{digest}"
    policy = read_files(layers, paths=[POLICY]).get(POLICY)
    if policy is None:
        raise BadInputError(
            f"{where}: its label {LABEL} names {' '.join(scopes)}, but it has no {POLICY}",
            "rebuild the image from its recipe (signing: writes the policy)",
        )
    judgement = judge(
        policy.decode(errors="replace"), image, digest, source=f"the image's {POLICY}"
    )
    if judgement.accepts_anything:
        return Trust(
            False,
            f"unsigned: the image's policy accepts {image} without a signature "
            f"(scope {judgement.scope!r})",
        )
    if judgement.rejects or not judgement.gpg:
        raise BadInputError(
            f"{where}: the image's own policy "
            + (
                f"rejects its repository (scope {judgement.scope!r})"
                if judgement.rejects
                else f"asks {', '.join(judgement.kinds)} for it, which only GPG signatures "
                "are checked with here"
            ),
            "fix the recipe's signing: (type gpg), or promote with --unsigned",
        )
    key_paths = sorted({_normal(p) for g in judgement.gpg for p in g.key_paths})
    candidates = scope_candidates(image)
    files = read_files(
        layers,
        paths=key_paths,
        directories=[REGISTRIES_D],
        enough=lambda found: (
            all(k in found for k in key_paths) and _names_scope(found, candidates[0])
        ),
    )
    missing = [k for k in key_paths if k not in files]
    if missing:
        raise BadInputError(
            f"{where}: the image's policy names the key {missing[0]}, which the image does not hold",
            "rebuild the image from its recipe (signing: installs the key)",
        )
    registries = {
        posixpath.basename(p): v.decode(errors="replace")
        for p, v in files.items()
        if posixpath.dirname(p) == REGISTRIES_D and p.endswith(".yaml")
    }
    url = lookaside(registries, image, source=f"the image's {REGISTRIES_D}")
    if not url:
        raise BadInputError(
            f"{where}: the image's {REGISTRIES_D} names no lookaside for {image}: "
            "no place to find its signatures",
            "the recipe's signing: scope needs a lookaside: URL",
        )
    keys = [files[k] for k in key_paths] + [
        _base64_key(d, where) for g in judgement.gpg for d in g.key_data
    ]
    return _verify(repository, image, digest, url.rstrip("/"), keys)


def _normal(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


def _names_scope(found: Mapping[str, bytes], scope: str) -> bool:
    """Whether a registries.d file read so far has an entry for `scope` (the most specific
    a lower layer could add is settled then: containers/image refuses a scope twice)."""
    for path, text in found.items():
        if posixpath.dirname(path) != REGISTRIES_D:
            continue
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # said by lookaside() once everything is read
        if isinstance(document, dict) and scope in (document.get("docker") or {}):
            return True
    return False


def _base64_key(data: str, where: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInputError(
            f"{where}: the image's policy has a keyData that is not base64"
        ) from exc


def _verify(repository: Repository, image: str, digest: str, url: str, keys: list[bytes]) -> Trust:
    _, path = split_name(image)
    store = SignatureStore(url)
    try:
        signatures = store.existing(path, digest)
    except NestcustomError as exc:
        raise NestcustomError(
            f"cannot read the signatures of {image}@{digest}: {exc.message}",
            "the image's lookaside (its registries.d) must answer from here; nothing was moved",
        ) from exc
    if not signatures:
        raise BadInputError(
            f"{image}@{digest} is not signed: no signature at {store.url(path, digest, 1)}",
            SIGN_HINT,
        )
    manifest, _ = repository.manifest(digest)
    if "sha256:" + hashlib.sha256(manifest).hexdigest() != digest:
        raise NestcustomError(f"the registry serves another manifest for {image}@{digest}")
    notes: list[str] = []
    fingerprints: list[str] = []
    with _workdir() as work:
        (work / "manifest.json").write_bytes(manifest)
        for number, key in enumerate(keys, 1):
            key_file = work / f"key-{number}.asc"
            key_file.write_bytes(key)
            with contextlib.ExitStack() as stack:
                try:
                    ring = stack.enter_context(keyring(key_file, secret=False))
                except BadInputError as exc:
                    raise BadInputError(
                        f"{image}@{digest}: a key the image's policy names is not usable: "
                        f"{exc.message}"
                    ) from exc
                listed = _fingerprints(ring.env())
                fingerprints += listed
                for index, signature in enumerate(signatures, 1):
                    (work / "sig").write_bytes(signature)
                    identity = _identity(ring.env(), work / "sig")
                    for fingerprint in listed:
                        if not identity or not _verifies(ring.env(), work, identity, fingerprint):
                            continue
                        if _repository_of(identity) == image:
                            return Trust(
                                True,
                                f"verified: signature-{index} by {fingerprint[-16:]} for {identity}",
                                fingerprint,
                                store.url(path, digest, index),
                            )
                        notes.append(
                            f"signature-{index} is signed for {identity}, another repository"
                        )
    raise BadInputError(
        f"{image}@{digest} is not signed by a key the image trusts for {image} "
        f"({', '.join(f[-16:] for f in fingerprints)}): {len(signatures)} signature(s) at "
        f"{url}, none verifies" + (f" ({'; '.join(notes)})" if notes else ""),
        SIGN_HINT,
    )


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="nc-promote-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fingerprints(env: Mapping[str, str]) -> list[str]:
    listing = proc.run(
        [proc.require("gpg", "gnupg"), "--batch", "--with-colons", "--list-keys"], env=env
    ).stdout
    return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]


def _identity(env: Mapping[str, str], signature: Path) -> str | None:
    """The docker-reference a simple signature names (read, not trusted: verify decides)."""
    done = proc.run(
        [proc.require("gpg", "gnupg"), "--batch", "--decrypt", str(signature)],
        env=env,
        check=False,
        timeout=60,
    )
    try:
        payload = json.loads(done.raw_stdout)
        return str(payload["critical"]["identity"]["docker-reference"])
    except (ValueError, KeyError, TypeError):
        return None


def _verifies(env: Mapping[str, str], work: Path, identity: str, fingerprint: str) -> bool:
    done = proc.run(
        [
            proc.require("skopeo", "skopeo"),
            "standalone-verify",
            str(work / "manifest.json"),
            identity,
            fingerprint,
            str(work / "sig"),
        ],
        env=env,
        check=False,
        timeout=120,
    )
    return done.returncode == 0


def _repository_of(identity: str) -> str:
    """REG/PATH of REG/PATH[:TAG][@DIGEST]."""
    name = identity.partition("@")[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.partition(':')[0]}" if head else name
