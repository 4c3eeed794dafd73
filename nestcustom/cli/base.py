"""Commands on base images: `base from-iso` builds a NewStart base from the DVD ISO."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nestcustom.cli import output
from nestcustom.cli.common import Settings, err, handle_errors

if TYPE_CHECKING:
    from nestcustom.base.pipeline import BaseImage, Event


@click.group("base")
def base() -> None:
    """Base images for recipes to build on."""


class _Progress:
    """One line per phase, and a line per tenth of the long steps (extract, install)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.shown: dict[str, int] = {}

    def __call__(self, event: Event) -> None:
        with self.lock:
            if event.total:
                tenth = event.done * 10 // event.total
                if self.shown.get(event.phase, -1) >= tenth:
                    return
                self.shown[event.phase] = tenth
                err(f"{event.phase:9} {event.done}/{event.total} {event.text}")
            else:
                err(f"{event.phase:9} {event.text}")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _report(result: BaseImage) -> None:
    release = result.release
    err(f"\n{release.name} {release.version}, {result.variant}, from {result.iso_name}")
    err(
        f"  packages   {len(result.packages)} (the image's rpm lists exactly these; "
        f"database {result.dbpath}, {result.db_backend}, {result.rpm_version})"
    )
    if result.normalized:
        err(
            f"  rpmdb      Berkeley DB rebuilt reproducibly: {result.normalized} install times "
            "from the ISO's date, unused bytes zeroed"
        )
    err(f"  installed  {_mb(result.install_size)} (the packages' installed size)")
    err(f"  image      {_mb(result.layer_size)}, one layer, ID {result.image_id[:12]}")
    if result.left_out:
        total = sum(v["bytes"] for v in result.left_out.values())
        err(f"  left out   {_mb(total)} in all:")
        for category, value in result.left_out.items():
            err(f"    {category:11} {_mb(value['bytes']):>10}  {value['files']} files")
    if result.from_cache:
        err(f"  cached     {' and '.join(result.from_cache)} from an earlier build of this ISO")
    for warning in result.warnings:
        err(f"  warning: {warning}")
    if result.reference:
        err(f"  tagged     {result.reference}")


def _as_json(result: BaseImage) -> dict[str, object]:
    return {
        "image_id": result.image_id,
        "reference": result.reference,
        "digest": result.digest,
        "pinned": result.pinned,
        "variant": result.variant,
        "iso": {"name": result.iso_name, "sha256": result.iso_sha256},
        "release": {"name": result.release.name, "version": result.release.version},
        "packages": list(result.packages),
        "install_size": result.install_size,
        "image_size": result.layer_size,
        "left_out": result.left_out,
        "rpmdb": {
            "path": result.dbpath,
            "backend": result.db_backend,
            "rpm": result.rpm_version,
            "normalized": result.normalized,
        },
        "warnings": list(result.warnings),
        "from_cache": list(result.from_cache),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }


@base.command(
    "from-iso",
    epilog="""\b
Examples:
  nestcustom base from-iso NewStart-CGS-Linux-MAIN.V6.06.11B10-x86_64.dvd.iso --variant optimized
  nestcustom base from-iso DVD.iso --variant standard --packages @core,openssh-server \\
      --tag registry.example.com/newstart/newstart:v6.06 --push
A recipe with `base: {image: REF, flavor: newstart}` then builds on the result.
""",
)
@click.argument("iso", type=click.Path(path_type=Path))
@click.option(
    "--variant",
    type=click.Choice(["standard", "optimized"]),
    default="standard",
    show_default=True,
    help="standard: docs, every locale, systemd as init with a HEALTHCHECK; optimized: no docs, "
    "man or info pages, C and English locales only, slim rpm macros in the image.",
)
@click.option(
    "--packages",
    "packages",
    multiple=True,
    help="Packages, @groups and @module:stream specs, comma-separated or repeated. Default: @core.",
)
@click.option("--tag", help="Tag the image (only after everything succeeded).")
@click.option("--push", is_flag=True, help="Push the tagged image and print REF@sha256:DIGEST.")
@click.option(
    "--tls-verify/--no-tls-verify",
    default=True,
    show_default=True,
    help="Verify the registry's TLS certificate (turn off only for a local test registry).",
)
@click.option(
    "--gpgcheck/--no-gpgcheck",
    default=True,
    show_default=True,
    help="Check every package's signature against the keys the ISO carries.",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    help="Where the temporary root is built (needs about twice the installed size). "
    "Default: $TMPDIR or /tmp.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default="/var/cache/nestcustom",
    envvar="NESTCUSTOM_CACHE_DIR",
    show_default=True,
    help="Keep, per ISO sha256, its metadata and its checked, unpacked rpm (the bootstrap) "
    "for later builds from the same ISO. Must belong to root and be closed to others.",
)
@click.option("--no-cache", is_flag=True, help="Neither use nor fill the cache.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.pass_obj
@handle_errors
def from_iso(
    settings: Settings,
    iso: Path,
    variant: str,
    packages: tuple[str, ...],
    tag: str | None,
    push: bool,
    tls_verify: bool,
    gpgcheck: bool,
    workdir: Path | None,
    cache_dir: Path,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Build a NewStart base image from the distribution's DVD ISO, offline.

    The ISO is read without mounting it; the package set is resolved against
    its repositories before anything is written; only the RPMs needed are
    extracted and installed, with the ISO's own rpm, into a fresh root; the
    root becomes a single-layer image FROM scratch. The same ISO, variant and
    package set always give the same image digest.
    """
    from nestcustom.base.pipeline import Options, build_base
    from nestcustom.base.variants import VARIANTS

    if push and not tag:
        raise click.UsageError("--push needs --tag")
    specs = tuple(s.strip() for item in packages for s in item.split(",") if s.strip())
    options = Options(
        iso=iso,
        variant=VARIANTS[variant],
        specs=specs or ("@core",),
        tag=tag,
        push=push,
        tls_verify=tls_verify,
        gpgcheck=gpgcheck,
        workdir=workdir,
        cache_dir=None if no_cache else cache_dir,
    )
    result = build_base(options, _Progress())
    _report(result)
    if as_json:
        output.emit(_as_json(result))
    elif result.pinned:
        click.echo(result.pinned)
    elif result.reference:
        click.echo(result.reference)
    else:
        click.echo(result.image_id)
