"""GPG keys for "simple signing" (containers-signature(5)), in keyrings of their own.

Nothing touches the user's ~/.gnupg: a key is imported into a temporary
GNUPGHOME for the run, whose gpg-agent is stopped and whose files are removed
at the end, so a passphrase is never cached beyond the run. Passphrases travel
in files (mode 0600 in that directory), never in argv, the environment or
logs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.keyformat import describe, key_kind


@dataclass(frozen=True)
class Keyring:
    """A temporary GNUPGHOME holding one key."""

    home: Path
    fingerprint: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.home)}


def _gpg() -> str:
    return proc.require("gpg", "gnupg")


@contextlib.contextmanager
def keyring(key: Path, *, secret: bool) -> Iterator[Keyring]:
    """`key` imported into a keyring of its own; the keyring and its agent are gone after."""
    kind = key_kind(key.read_bytes())
    wanted = "gpg-secret" if secret else "gpg-public"
    if kind != wanted and not (kind == "gpg-secret" and not secret):
        raise BadInputError(
            f"{key}: this is {describe(kind)}, not {describe(wanted)}",
            "sign with the private key `nestcustom keys generate` wrote (signing-key.asc); "
            "sigstore keys cannot be used here: Debian 12's containers/image has no sigstore"
            if secret
            else "give the public key (signing-key.pub.asc)",
        )
    home = Path(tempfile.mkdtemp(prefix="nc-gpg-"))
    try:
        home.chmod(0o700)
        # The agent re-protects the imported key for this keyring with the fewest s2k
        # rounds: it lives for this run only, in this 0700 directory, removed after. The
        # key file keeps its own protection; its passphrase is asked once, not per
        # signature (each of which would otherwise take a full s2k derivation).
        (home / "gpg-agent.conf").write_text("s2k-count 65536\n")
        env = {**os.environ, "GNUPGHOME": str(home)}
        done = proc.run([_gpg(), "--batch", "--import", str(key)], env=env, check=False)
        if done.returncode != 0:
            raise BadInputError(
                f"{key}: gpg cannot import this key: {done.stderr.strip().splitlines()[-1:]}"
            )
        listing = proc.run(
            [_gpg(), "--batch", "--with-colons", "--list-secret-keys" if secret else "--list-keys"],
            env=env,
        ).stdout
        fingerprints = [
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        ]
        if not fingerprints:
            raise BadInputError(f"{key}: the file holds no {'secret ' if secret else ''}key")
        yield Keyring(home, fingerprints[0])
    finally:
        with contextlib.suppress(NestcustomError, OSError):
            gpgconf = shutil.which("gpgconf")
            if gpgconf:
                proc.run(
                    [gpgconf, "--homedir", str(home), "--kill", "gpg-agent"],
                    env={**os.environ, "GNUPGHOME": str(home)},
                    check=False,
                    timeout=30,
                )
        shutil.rmtree(home, ignore_errors=True)


def passphrase_file(home: Path, passphrase: str | None) -> Path:
    """The passphrase in a 0600 file inside the keyring's home (removed with it)."""
    path = home / "passphrase"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(passphrase or "")
    return path


def read_passphrase(path: Path) -> str:
    """A passphrase file's first line (a trailing newline is not part of it)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise BadInputError(f"cannot read the passphrase file {path}: {exc.strerror}") from exc
    return text.splitlines()[0] if text else ""


def generate(directory: Path, uid: str, passphrase: str | None) -> tuple[Path, Path, str]:
    """A new RSA 3072 signing key: (secret key file, public key file, fingerprint).

    RSA, not ed25519: every gpg a host may have verifies it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    secret_path, public_path = directory / "signing-key.asc", directory / "signing-key.pub.asc"
    for path in (secret_path, public_path):
        if path.exists():
            raise BadInputError(f"{path} already exists", "choose an empty directory")
    home = Path(tempfile.mkdtemp(prefix="nc-gpg-"))
    try:
        home.chmod(0o700)
        env = {**os.environ, "GNUPGHOME": str(home)}
        secret = passphrase_file(home, passphrase)
        protect = (
            ["--passphrase-file", str(secret)] if passphrase else ["--passphrase", ""]
        )  # an empty passphrase is no secret; a real one is only ever in the file
        gpg = [_gpg(), "--batch", "--pinentry-mode", "loopback", *protect]
        proc.run([*gpg, "--quick-gen-key", uid, "rsa3072", "sign", "never"], env=env)
        listing = proc.run([_gpg(), "--batch", "--with-colons", "--list-secret-keys"], env=env)
        fingerprint = next(
            line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr:")
        )
        exported = proc.run([*gpg, "--armor", "--export-secret-keys", fingerprint], env=env)
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(exported.raw_stdout)
        public = proc.run([_gpg(), "--batch", "--armor", "--export", fingerprint], env=env)
        public_path.write_bytes(public.raw_stdout)
        return secret_path, public_path, fingerprint
    finally:
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            proc.run(
                [gpgconf, "--homedir", str(home), "--kill", "gpg-agent"],
                env={**os.environ, "GNUPGHOME": str(home)},
                check=False,
                timeout=30,
            )
        shutil.rmtree(home, ignore_errors=True)
