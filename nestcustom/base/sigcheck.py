"""Signature checks against the ISO's keys: rpmkeys' verdicts, and the bootstrap's packages.

Two rpms check signatures here, as in mock: the host's rpm checks the
bootstrap's packages (the ISO's own rpm and the libraries it loads) before
any of them is unpacked, let alone run; the ISO's rpm, once trusted that
way, checks the image's packages inside the install namespace (nsinstall).
A hostile ISO whose rpm says every package verifies is stopped at the first
check, since its rpm never runs unchecked.

SHA1 signatures: EL8 (and NewStart V6) signs headers with RSA/SHA1, which
rpm 4.14 to 4.18 accept; rpm built on Sequoia (4.19 and later) and
RHEL 9's crypto policies refuse SHA1, so on such a host the first check
fails with the host's reason; the hint says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nestcustom import proc
from nestcustom.errors import BadInputError, NestcustomError

BATCH = 200


# what a file rpmkeys cannot read as a package is refused with
NO_VERDICT = "no verdict: rpmkeys cannot read it as a package"


def verdict_ok(verdict: str) -> bool:
    """Whether one `rpmkeys --checksig` verdict says: digests and a known signature verify.

    "digests signatures OK" (rpm >= 4.14.2); "rsa sha1 (md5) pgp md5 OK" (older). An
    unsigned package says "digests OK" only, an unknown key "SIGNATURES NOT OK".
    """
    signed = "signatures OK" in verdict or (" pgp " in verdict.lower() and "NOT" not in verdict)
    return signed and "NOT OK" not in verdict


def verdicts(stdout: str, paths: Sequence[str] = ()) -> dict[str, str]:
    """path -> verdict, from rpmkeys --checksig output on `paths`.

    A file that is no package (a damaged ISO) gets "": rpm 4.18 prints it as `PATH:`,
    with no verdict and no line end, so the next file's verdict follows on its line.
    """
    found = {}
    known = sorted(paths, key=len, reverse=True)
    for line in stdout.splitlines():
        while head := next((p for p in known if _no_verdict_first(line, p)), None):
            found[head] = ""
            line = line[len(head) + 1 :]
        if line:
            path, _, verdict = line.partition(": ")
            found[path.strip()] = verdict.strip()
    return found


def _no_verdict_first(line: str, path: str) -> bool:
    return line.startswith(f"{path}:") and not line.startswith(f"{path}: ")


def check_bootstrap(rpms: Sequence[Path], keys: Sequence[Path], scratch: Path) -> None:
    """Refuse the build when a bootstrap package does not verify against the ISO's keys."""
    rpmkeys = proc.require("rpmkeys", "rpm")
    keyring = scratch / "host-keyring"
    keyring.mkdir(parents=True, exist_ok=True)
    try:
        proc.run([rpmkeys, "--dbpath", str(keyring), "--import", *map(str, keys)], timeout=120)
    except proc.CommandError as exc:
        raise BadInputError(
            f"the ISO's signing keys cannot be imported by the host's rpm: {exc.message}",
            "is the ISO what the vendor published?",
        ) from exc
    bad: list[str] = []
    errors = ""
    for start in range(0, len(rpms), BATCH):
        batch = [str(p) for p in rpms[start : start + BATCH]]
        done = proc.run(
            [rpmkeys, "--dbpath", str(keyring), "--checksig", *batch], check=False, timeout=600
        )
        said = verdicts(done.stdout, batch)
        errors += done.stderr
        for path in batch:
            verdict = said.get(path, "not checked: " + done.stderr.strip()[-200:])
            if not verdict_ok(verdict):
                bad.append(f"{Path(path).name}: {verdict or NO_VERDICT}")
    if bad:
        raise _refusal(bad, errors)


def _refusal(bad: list[str], stderr: str) -> NestcustomError:
    shown = "\n  ".join(bad[:10]) + (f"\n  ... {len(bad) - 10} more" if len(bad) > 10 else "")
    hint = "the ISO is damaged or not the vendor's; --no-gpgcheck skips this check (not advised)"
    if "sha1" in stderr.lower():
        hint = (
            "the host's rpm refuses SHA1 signatures (rpm >= 4.19 or a crypto policy), which "
            "EL8 DVDs use: build on a host whose rpm accepts them (Debian 12's does)"
        )
    return BadInputError(
        f"{len(bad)} package(s) of the ISO's rpm (the bootstrap, checked by the host's rpm "
        f"before anything of them runs) fail the signature check against the ISO's keys:\n"
        f"  {shown}",
        hint,
    )
