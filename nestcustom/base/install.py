"""Install the resolved set into a fresh root with the ISO's own rpm, as mock does.

The host's rpm may write another database format or path than the image's rpm
reads (EL8's rpm 4.14 reads only BerkeleyDB under /var/lib/rpm; Debian's 4.18
writes sqlite, by default under ~/.rpmdb). So, as mock's bootstrap does, the
ISO's own rpm (and what it needs) is unpacked into a bootstrap root first, and
that rpm, chrooted into the bootstrap, installs the image root mounted inside
it. The database is then exactly what the image's rpm writes and reads.

The bootstrap is only unpacked (host rpm, no scriptlets, its database thrown
away); the image root gets a real transaction: ordering, scriptlets run inside
the image root with /dev and /proc, file owners resolved against the image's
own /etc/passwd, signatures checked against the ISO's keys beforehand.
Everything mounted lives in a private mount and PID namespace (nsinstall.py).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.base.resolve import Package, Plan
from nestcustom.base.variants import Variant
from nestcustom.errors import BadInputError, NestcustomError


@dataclass(frozen=True)
class Installed:
    packages: tuple[str, ...]  # NAME-EPOCH:VERSION-RELEASE.ARCH as the image's rpm lists them
    owned: frozenset[str]  # every path the database says a package owns
    dbpath: str  # where the ISO's rpm keeps its database
    backend: str  # its format: bdb (EL8), sqlite, ndb
    rpm_version: str
    clock_install_times: bool  # True when the database still holds the clock's install times
    normalized: int  # headers whose install times were rewritten (Berkeley DB), else 0
    seconds: float  # the rpm transaction alone
    normalize_seconds: float = 0.0


def unpack_bootstrap(boot: Path, packages: Sequence[Path]) -> None:
    """The ISO's rpm and what it needs, unpacked into `boot` (host rpm, no scriptlets)."""
    rpm = proc.require("rpm", "rpm")
    boot.mkdir(parents=True, exist_ok=True)
    try:
        proc.run(
            [
                rpm,
                "--root",
                str(boot),
                "--dbpath",
                "/var/lib/nestcustom-bootstrap-db",  # thrown away with the bootstrap
                "-i",
                "--nodeps",
                "--noscripts",
                "--notriggers",
                "--nosignature",
                "--excludedocs",
                "--define",
                "_install_langs C",
                *map(str, packages),
            ],
            timeout=1800,
        )
    except proc.CommandError as exc:
        raise _space_or(exc, "unpacking the bootstrap (the ISO's rpm) failed") from exc
    shutil.rmtree(boot / "var/lib/nestcustom-bootstrap-db", ignore_errors=True)


def _space_or(exc: proc.CommandError, what: str) -> NestcustomError:
    text = exc.stderr or exc.message
    if "No space left" in text or ("needs" in text and "more space" in text):
        return NestcustomError(
            f"{what}: no space left in the work directory",
            "free space there or pass --workdir on a larger file system",
        )
    return NestcustomError(f"{what}: {exc.message}", exc.hint)


def _follow(progress: Path, stop: threading.Event, on_line: Callable[[str], None]) -> None:
    """Hand each new line of the namespace's progress file to on_line, until stopped: a
    line is handed on once it is whole, and the file is read once more after the stop, so
    the last lines the namespace wrote are not lost."""
    offset, partial = 0, ""
    while True:
        stopped = stop.wait(0.2)
        try:
            with progress.open() as handle:
                handle.seek(offset)
                chunk = handle.read()
                offset = handle.tell()
        except OSError:
            chunk = ""
        *lines, partial = (partial + chunk).split("\n")
        for line in lines:
            on_line(line)
        if stopped:
            if partial:
                on_line(partial)
            return


def install_root(
    *,
    work: Path,
    boot: Path,
    boot_lower: Path | None,
    root: Path,
    iso_dir: Path,
    plan: Plan,
    keys: Sequence[str],
    variant: Variant,
    gpgcheck: bool,
    source_date_epoch: int,
    on_line: Callable[[str], None],
    verified: Sequence[str] = (),
) -> Installed:
    """Check signatures and install plan.packages into `root` with the bootstrap's rpm.

    boot_lower: a kept bootstrap root (isocache), mounted read-only under an overlay
    at `boot` inside the namespace; None when `boot` itself holds the bootstrap.
    verified: paths of packages whose signatures an earlier build of the same ISO
    checked (the same bytes, by their repository checksum), not checked again.
    """
    import time

    unshare = proc.require("unshare", "util-linux")
    request_path, result_path, progress = (
        work / "install-request.json",
        work / "install-result.json",
        work / "install-progress.log",
    )
    root.mkdir(parents=True, exist_ok=True)
    progress.write_text("")
    request = {
        "bootstrap": str(boot),
        "bootstrap_lower": str(boot_lower) if boot_lower else None,
        "overlay": str(boot.parent / "bootstrap-overlay"),
        "root": str(root),
        "iso": str(iso_dir),
        "result": str(result_path),
        "progress": str(progress),
        "packages": [p.path for p in plan.packages],
        # rpm -iv names each package as it installs it, with the epoch when there is one
        # (even `Epoch: 0`, written in some specs, shows as NAME-0:VERSION-RELEASE.ARCH)
        "nevras": [n for p in plan.packages for n in (p.nevra, p.nevra_epoch_short, p.nevra_epoch)],
        "keys": list(keys),
        "gpgcheck": gpgcheck,
        "verified": list(verified),
        "macros": dict(variant.install_macros),
        "rpm_options": list(variant.rpm_options),
        "source_date_epoch": source_date_epoch,
    }
    request_path.write_text(json.dumps(request))
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(progress, stop, on_line), daemon=True)
    follower.start()
    started = time.monotonic()
    try:
        proc.run(
            [
                unshare,
                "--mount",
                "--pid",
                "--ipc",
                "--uts",
                "--fork",
                "--kill-child",
                "--propagation",
                "private",
                sys.executable,
                "-m",
                "nestcustom.base.nsinstall",
                str(request_path),
            ],
            timeout=3600,
            hint="installing needs root (mount and PID namespaces, chroot, file owners)",
        )
    finally:
        stop.set()
        follower.join(timeout=2)
    seconds = time.monotonic() - started
    try:
        result = json.loads(result_path.read_text())
    except (OSError, ValueError) as exc:
        raise NestcustomError("the install step ended without a result") from exc
    if not result.get("ok"):
        raise _failure(result, plan)
    installed = [line.split(" ")[0] for line in result["installed"]]
    # rpm >= 4.18 takes the transaction id from SOURCE_DATE_EPOCH (and counts install times
    # up from it, one second per package); older rpms use the clock, and a Berkeley DB
    # database has been rewritten by then (rpmdbnorm).
    tids = {line.split(" ")[1] for line in result["installed"] if " " in line}
    return Installed(
        packages=tuple(sorted(installed)),
        owned=frozenset(result["owned"]),
        dbpath=result["dbpath"],
        backend=str(result.get("backend", "unknown")),
        rpm_version=result["rpm_version"],
        clock_install_times=tids != {str(source_date_epoch)},
        normalized=int(result.get("normalized", 0)),
        seconds=float(result.get("rpm_seconds", seconds)),
        normalize_seconds=float(result.get("normalize_seconds", 0.0)),
    )


def _failure(result: dict[str, object], plan: Plan) -> NestcustomError:
    kind = result.get("kind")
    output = str(result.get("output", ""))
    if kind == "signature":
        problems = [str(p) for p in result.get("problems", [])]  # type: ignore[attr-defined]
        shown = "\n  ".join(problems[:10]) + (
            f"\n  ... {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        return BadInputError(
            f"{len(problems)} package(s) on the ISO fail the signature check against its keys:\n  {shown}",
            "the ISO is damaged or not the vendor's; --no-gpgcheck skips this check (not advised)",
        )
    if "No space left" in output or "more space" in output:
        return NestcustomError(
            "installing failed: no space left in the work directory",
            "free space there or pass --workdir on a larger file system",
        )
    if kind == "normalize":
        return NestcustomError(
            f"the image's Berkeley DB rpm database could not be made reproducible: {output}",
            "nothing was tagged; please report this with the ISO's name",
        )
    tail = "\n".join(output.strip().splitlines()[-8:])
    what = (
        "rpm failed installing the image root"
        if kind == "install"
        else "the install namespace failed"
    )
    return NestcustomError(f"{what} ({len(plan.packages)} packages):\n{tail}")


def bootstrap_files(iso_dir: Path, packages: Sequence[Package]) -> list[Path]:
    return [iso_dir / p.path for p in packages]
