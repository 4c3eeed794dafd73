"""Signing keys for fast tests: ed25519, made in well under a second by the real gpg
(`nestcustom keys generate` makes RSA 3072, which takes seconds here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def make_key(directory: Path, uid: str, passphrase: str | None = None) -> tuple[Path, str]:
    """(secret key file, fingerprint) of a new ed25519 signing key."""
    directory.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="nc-testkey-"))
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase or ""]
    try:
        home.chmod(0o700)
        # the agent's default protection of the key calibrates for ~100 ms per use: seconds
        # here on a busy machine; the test keys need no strength
        (home / "gpg-agent.conf").write_text("s2k-count 65536\n")
        subprocess.run(
            [*gpg, "--quick-gen-key", uid, "ed25519", "sign", "never"],
            env=env,
            check=True,
            capture_output=True,
        )
        listing = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        secret = directory / "signing-key.asc"
        secret.write_bytes(
            subprocess.run(
                [*gpg, "--armor", "--export-secret-keys", fingerprint],
                env=env,
                check=True,
                capture_output=True,
            ).stdout
        )
        return secret, fingerprint
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)
