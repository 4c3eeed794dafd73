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


@click.command(
    epilog="""\b
Examples:
  nestcustom sbom docker://registry.example.com/custom/nestos-strace@sha256:... > strace.spdx.json
  nestcustom sbom containers-storage:localhost/nestcustom/nestos-strace:latest --format cyclonedx -o bom.json
The SBOM is checked against its format before it is written (offline).
""",
)
@click.argument("image")
@click.option(
    "--format", "fmt", type=click.Choice(["spdx", "cyclonedx"]), default="spdx", show_default=True
)
@click.option(
    "-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write it here."
)
@click.option("--tls-verify/--no-tls-verify", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A result document with the SBOM in it.")
@click.pass_obj
@handle_errors
def sbom(
    settings: Settings, image: str, fmt: str, out: Path | None, tls_verify: bool, as_json: bool
) -> None:
    """The SBOM of an image, from its own RPM database (SPDX 2.3 or CycloneDX 1.6 JSON):
    every package with its version, arch, license, source RPM, vendor, signing key and
    payload digest, plus the image, its base and its recipe."""
    import json

    from nestcustom.gitops.sbom import make_sbom

    made = make_sbom(image, fmt, tls_verify=tls_verify)
    text = json.dumps(made.document, indent=2, sort_keys=True) + "\n"
    if out is not None:
        out.write_text(text)
    err(f"{made.packages} packages of {made.subject.reference} ({fmt}, valid)")
    if as_json:
        output.emit(
            {
                "format": fmt,
                "packages": made.packages,
                "output": str(out) if out else None,
                "document": made.document,
            }
        )
    elif out is None:
        click.echo(text, nl=False)


@click.command(
    epilog="""\b
Examples:
  nestcustom advisories containers-storage:localhost/nestcustom/nestos-strace:latest
  nestcustom advisories docker://REGISTRY/custom/web:latest --repo https://repo.openeuler.org/openEuler-22.03-LTS-SP2/update/x86_64/
  nestcustom advisories IMAGE --fail-on important     # exit 1 when exposed
""",
)
@click.argument("image")
@click.option(
    "--repo",
    "repos",
    multiple=True,
    metavar="URL",
    help="A repository whose updateinfo.xml to read (repeatable); default: the image's "
    "enabled repositories (local images).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "important", "moderate", "low"]),
    help="Exit 1 when the image is exposed to an advisory of this severity or higher.",
)
@click.option("--tls-verify/--no-tls-verify", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document on stdout.")
@click.pass_obj
@handle_errors
def advisories(
    settings: Settings,
    image: str,
    repos: tuple[str, ...],
    fail_on: str | None,
    tls_verify: bool,
    as_json: bool,
) -> None:
    """The security advisories an image is exposed to: its installed packages against the
    repositories' updateinfo.xml (what `dnf updateinfo --security` reads)."""
    from nestcustom.gitops.advisories import advisories_for, severity_rank

    found, read = advisories_for(image, repos, tls_verify=tls_verify)
    rows = [e.as_dict() for e in found]
    for row in rows:
        click.echo(
            f"{row['id']}  {row['severity']:<9} {row['package']}.{row['arch']}  "
            f"{row['installed']} -> {row['fixed']}",
            err=as_json,
        )
    err(
        f"{len(rows)} advisor{'y' if len(rows) == 1 else 'ies'} from {len(read)} repositor"
        f"{'y' if len(read) == 1 else 'ies'}"
    )
    failing = (
        [r for r in found if severity_rank(r.advisory.severity) >= severity_rank(fail_on)]
        if fail_on
        else []
    )
    if as_json:
        output.emit_result(
            {"advisories": rows, "repositories": read},
            f"exposed to {len(failing)} advisories of severity {fail_on} or higher"
            if failing
            else None,
        )
    if failing:
        exit_failure()
