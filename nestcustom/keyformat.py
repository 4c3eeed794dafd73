"""What a key file holds, from its first bytes: shared by recipes (signing: keys) and the
signer (build --sign), so both tell a GPG key from a sigstore one the same way."""

from __future__ import annotations

SECRET_ARMOR = b"-----BEGIN PGP PRIVATE KEY BLOCK-----"
PUBLIC_ARMOR = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
SIGSTORE_PRIVATE = (b"SIGSTORE PRIVATE KEY", b"COSIGN PRIVATE KEY")
PEM_PUBLIC = b"-----BEGIN PUBLIC KEY-----"

WORDS = {
    "gpg-secret": "a GPG secret key",
    "gpg-public": "a GPG public key",
    "sigstore": "a sigstore (cosign) private key",
    "sigstore-public": "a sigstore (cosign) public key",
}


def key_kind(data: bytes) -> str:
    """ "gpg-secret", "gpg-public", "sigstore", "sigstore-public" or "unknown"."""
    head = data.lstrip()[:200]
    if head.startswith(SECRET_ARMOR):
        return "gpg-secret"
    if head.startswith(PUBLIC_ARMOR):
        return "gpg-public"
    if any(marker in head for marker in SIGSTORE_PRIVATE):
        return "sigstore"
    if head.startswith(PEM_PUBLIC):
        return "sigstore-public"
    if head[:1] and head[0] & 0x80:  # a binary OpenPGP packet: tag 5 secret key, 6 public key
        tag = (head[0] & 0x3F) if head[0] & 0x40 else (head[0] >> 2) & 0x0F
        return {5: "gpg-secret", 6: "gpg-public"}.get(tag, "unknown")
    return "unknown"


def describe(kind: str) -> str:
    return WORDS.get(kind, "no key nestcustom reads")
