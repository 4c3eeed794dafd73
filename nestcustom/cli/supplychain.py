"""What `build` adds for the supply chain: a signer, the SBOM pushed next to an image, and
the advisories gate; set up before anything is built, so bad input costs no build."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from nestcustom.cli.common import err
from nestcustom.errors import BadInputError


def read_passphrase_option(path: Path | None) -> str | None:
    from nestcustom.image.gpgkey import read_passphrase

    return read_passphrase(path) if path is not None else None


@contextlib.contextmanager
def open_signer(key: Path, passphrase_file: Path | None, store: str | None) -> Iterator[Any]:
    """A signing session; a key that needs a passphrase asks for it on a terminal."""
    from nestcustom.image.signing import SignOptions, signing_session

    passphrase = read_passphrase_option(passphrase_file)
    options = SignOptions(key, passphrase, store)
    try:
        session = signing_session(options)
        signer = session.__enter__()
    except BadInputError as exc:
        asked = passphrase is None and "passphrase" in exc.message and sys.stdin.isatty()
        if not asked:
            if passphrase is None and "passphrase" in exc.message:
                raise BadInputError(
                    f"{key}: the key needs a passphrase",
                    "give it with --sign-passphrase-file FILE (in CI: a file variable)",
                ) from exc
            raise
        typed = click.prompt(f"Passphrase of {key}", hide_input=True, err=True)
        session = signing_session(SignOptions(key, typed, store))
        signer = session.__enter__()
    try:
        yield signer
    finally:
        session.__exit__(None, None, None)


@contextlib.contextmanager
def supply_chain(
    sign_key: Path | None,
    passphrase_file: Path | None,
    store: str | None,
    sbom: bool,
    fail_on: str | None,
    advisory_repos: tuple[str, ...],
    tls_verify: bool,
) -> Iterator[dict[str, Any]]:
    """BuildOptions' `signer`, `attach` and `gate` for these options."""
    extras: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if sign_key is not None:
            signer = stack.enter_context(open_signer(sign_key, passphrase_file, store))
            err(f"signing with {sign_key} (key {signer.fingerprint})")
            extras["signer"] = signer
        if sbom:
            from nestcustom.gitops.sbompush import sbom_attacher

            extras["attach"] = sbom_attacher(extras.get("signer"), tls_verify)
        if fail_on:
            from nestcustom.gitops.advisories import advisory_gate

            extras["gate"] = advisory_gate(fail_on, advisory_repos, tls_verify)
        yield extras
