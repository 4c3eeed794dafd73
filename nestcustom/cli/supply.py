"""Supply-chain commands: keys generate, sbom, advisories."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nestcustom.cli import output
from nestcustom.cli.common import Settings, err, handle_errors
from nestcustom.errors import EXIT_FAILURE, BadInputError


@click.group()
def keys() -> None:
    """Signing keys for `build --sign` and the recipes' `signing:`."""


@keys.command(
    "generate",
    epilog="""\b
Examples:
  nestcustom keys generate keys/ --passphrase-file $XDG_RUNTIME_DIR/key-pass
  nestcustom keys generate keys/ --uid "Example images <images@example.com>"
Then: nestcustom build RECIPE --push --sign keys/signing-key.asc --sign-passphrase-file FILE;
recipes name keys/signing-key.pub.asc in signing: so hosts verify the images.
""",
)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--uid",
    default="nestcustom image signing",
    show_default=True,
    help="The key's user id (a name, optionally <email>).",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Protect the key with the passphrase in FILE (first line); else asked on the terminal.",
)
@click.option("--no-passphrase", is_flag=True, help="Leave the key unprotected (keep it safe!).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.pass_obj
@handle_errors
def generate(
    settings: Settings,
    directory: Path,
    uid: str,
    passphrase_file: Path | None,
    no_passphrase: bool,
    as_json: bool,
) -> None:
    """Make a GPG signing key (RSA 3072) for simple signing: a secret key file (0600) and
    the public key hosts trust. GPG because it is what every skopeo on a host verifies."""
    from nestcustom.image import gpgkey

    if passphrase_file and no_passphrase:
        raise click.UsageError("--passphrase-file and --no-passphrase exclude each other")
    if not uid.strip() or "\n" in uid:
        raise BadInputError(f"--uid {uid!r} is not a user id", "e.g. 'Images <images@example.com>'")
    if passphrase_file is not None:
        passphrase: str | None = gpgkey.read_passphrase(passphrase_file)
        if not passphrase:
            raise BadInputError(f"{passphrase_file}: the passphrase is empty")
    elif no_passphrase:
        passphrase = None
    elif sys.stdin.isatty():
        passphrase = click.prompt(
            "Passphrase for the new key", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        raise BadInputError(
            "the new key needs a passphrase",
            "give --passphrase-file FILE, or --no-passphrase for an unprotected key",
        )
    secret, public, fingerprint = gpgkey.generate(directory, uid, passphrase)
    err(f"secret key  {secret} (keep it secret: it signs images)")
    err(f"public key  {public} (hosts trust it: name it in a recipe's signing:)")
    err(f"fingerprint {fingerprint}")
    if as_json:
        output.emit(
            {
                "key": {
                    "type": "gpg",
                    "secret": str(secret),
                    "public": str(public),
                    "fingerprint": fingerprint,
                    "protected": passphrase is not None,
                }
            }
        )
    else:
        click.echo(fingerprint)


def exit_failure() -> None:
    sys.exit(EXIT_FAILURE)
