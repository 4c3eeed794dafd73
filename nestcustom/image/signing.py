"""Signing pushed manifests with GPG "simple signing" (skopeo standalone-sign).

A signing session holds the key in a keyring of its own (gpgkey.py) and is
checked before anything is built: a wrong passphrase, a missing key or a key
in another format stops the run with exit 2 and nothing built, tagged or
pushed. Each signature is checked with `skopeo standalone-verify` before it
is stored, then stored where hosts read it (lookaside.py).

Only GPG keys sign here: Debian 12 patches sigstore out of containers/image
("Debian-local change: sigstore disabled"), so a sigstore signature could not
be made, nor checked, by the real code on this machine.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.image.distribution import Repository, split_name
from nestcustom.image.events import split_reference
from nestcustom.image.gpgkey import Keyring, keyring, passphrase_file
from nestcustom.image.lookaside import SignatureStore, staging_url

# What standalone-sign signs when the session is opened: any manifest will do.
_PROBE = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {},
        "layers": [],
    }
).encode()


@dataclass(frozen=True)
class SignOptions:
    key: Path
    passphrase: str | None = None  # from --sign-passphrase-file or the prompt
    store: str | None = None  # --signature-store; else registries.d's lookaside-staging


@dataclass(frozen=True)
class Signed:
    identity: str  # REGISTRY/PATH:TAG the signature names
    digest: str
    fingerprint: str
    url: str  # where it was stored


def _explain(stderr: str, key: Path) -> NestcustomError:
    text = stderr.strip().splitlines()[-1] if stderr.strip() else "skopeo failed"
    if "Bad passphrase" in text:
        return BadInputError(
            f"{key}: wrong passphrase", "check --sign-passphrase-file (its first line is used)"
        )
    if "Inappropriate ioctl" in text or "No passphrase" in text or "No pinentry" in text:
        return BadInputError(
            f"{key}: the key needs a passphrase",
            "give it with --sign-passphrase-file FILE (in CI: a file variable), or run in a terminal",
        )
    return NestcustomError(f"signing with {key} failed: {text}")


class Signer:
    """An open signing session (use `signing_session`)."""

    def __init__(self, ring: Keyring, options: SignOptions) -> None:
        self.ring = ring
        self.options = options
        self.passphrase = passphrase_file(ring.home, options.passphrase)
        self._lock = threading.Lock()
        self._count = 0

    @property
    def fingerprint(self) -> str:
        return self.ring.fingerprint

    def signature(self, manifest: bytes, identity: str) -> bytes:
        """A simple signature of `manifest` for `identity`, checked before it is returned."""
        with self._lock:
            self._count += 1
            work = self.ring.home / f"s{self._count}"
        work.mkdir()
        (work / "manifest.json").write_bytes(manifest)
        skopeo = proc.require("skopeo", "skopeo")
        signed = proc.run(
            [
                skopeo,
                "standalone-sign",
                "--passphrase-file",
                str(self.passphrase),
                str(work / "manifest.json"),
                identity,
                self.fingerprint,
                "-o",
                str(work / "sig"),
            ],
            env=self.ring.env(),
            check=False,
            timeout=120,
        )
        if signed.returncode != 0:
            raise _explain(signed.stderr, self.options.key)
        checked = proc.run(
            [
                skopeo,
                "standalone-verify",
                str(work / "manifest.json"),
                identity,
                self.fingerprint,
                str(work / "sig"),
            ],
            env=self.ring.env(),
            check=False,
            timeout=120,
        )
        if checked.returncode != 0:
            raise NestcustomError(
                f"the signature just made for {identity} does not verify: {checked.stderr.strip()[-300:]}"
            )
        return (work / "sig").read_bytes()

    def verifies(self, manifest: bytes, identity: str, signature: bytes) -> bool:
        """Whether `signature` is this key's, of `manifest`, for `identity`."""
        with self._lock:
            self._count += 1
            work = self.ring.home / f"v{self._count}"
        work.mkdir()
        (work / "manifest.json").write_bytes(manifest)
        (work / "sig").write_bytes(signature)
        done = proc.run(
            [
                proc.require("skopeo", "skopeo"),
                "standalone-verify",
                str(work / "manifest.json"),
                identity,
                self.fingerprint,
                str(work / "sig"),
            ],
            env=self.ring.env(),
            check=False,
            timeout=120,
        )
        return done.returncode == 0

    def ensure(
        self, identity: str, digest: str, tls_verify: bool, manifest: bytes | None = None
    ) -> Signed:
        """A stored signature of `digest` for `identity` by this key: found, else made."""
        repository = split_reference(identity)[0]
        _, path = split_name(repository)
        store = SignatureStore(staging_url(repository, self.options.store))
        if manifest is None:
            manifest, _ = Repository(repository, tls_verify=tls_verify).manifest(digest)
        for index, signature in enumerate(store.existing(path, digest), 1):
            if self.verifies(manifest, identity, signature):
                return Signed(identity, digest, self.fingerprint, store.url(path, digest, index))
        return self.sign(identity, digest, manifest)

    def sign(self, identity: str, digest: str, manifest: bytes) -> Signed:
        """Sign the manifest `digest` of `identity` (REGISTRY/PATH:TAG) and store it."""
        repository = split_reference(identity)[0]
        _, path = split_name(repository)
        store = SignatureStore(staging_url(repository, self.options.store))
        url = store.store(path, digest, self.signature(manifest, identity))
        return Signed(identity, digest, self.fingerprint, url)


@contextlib.contextmanager
def signing_session(options: SignOptions) -> Iterator[Signer]:
    """The key ready to sign, proven by signing once; everything of it removed afterwards."""
    if not options.key.is_file():
        raise BadInputError(
            f"the signing key {options.key} does not exist",
            "create one with `nestcustom keys generate DIR`",
        )
    with keyring(options.key, secret=True) as ring:
        signer = Signer(ring, options)
        signer.signature(_PROBE, "localhost/nestcustom/probe:latest")
        yield signer
