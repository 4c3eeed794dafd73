"""Spoiled DVDs for the bad-input tests: what a damaged download or a hostile ISO holds.

* ``unsigned``: nc-owned without a signature, the repository metadata agreeing;
* ``corrupt``: nc-owned's bytes changed after the metadata was written;
* ``hostile-rpm``: the `rpm` package, which the bootstrap unpacks and runs,
  replaced by one of the same name, version and release whose `rpmkeys` says
  every package verifies; signed with a key the ISO does not carry, the
  metadata agreeing (an attacker rebuilds the repository too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

DAMAGES = ("unsigned", "corrupt", "hostile-rpm")
BEFORE_METADATA = ("unsigned", "hostile-rpm")  # the rest spoil what the metadata describes

OUTSIDER = "Someone Else <mallory@example.invalid>"

#: An rpmkeys that checks nothing: every package it is asked about "verifies". A static
#: program, since the bootstrap root has no shell to run a script with.
FAKE_RPMKEYS = r"""
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (n > 4 && strcmp(argv[i] + n - 4, ".rpm") == 0)
            printf("%s: digests signatures OK\n", argv[i]);
    }
    return 0;
}
"""


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def spoil(packages: Path, damage: str, outsider: Path) -> None:
    """Spoil the packages directory as `damage` says (see the module's doc)."""
    if damage == "hostile-rpm":
        _tamper_rpm(packages, outsider)
        return
    (victim,) = packages.glob("nc-owned-*.rpm")
    if damage == "unsigned":
        copy = victim.with_suffix(".tmp")
        shutil.copyfile(victim, copy)
        victim.unlink()
        _run(["rpmsign", "--delsign", str(copy)])
        copy.rename(victim)
    elif damage == "corrupt":  # after createrepo: the repository's checksum no longer matches
        data = bytearray(victim.read_bytes())
        for offset in range(len(data) - 200, len(data) - 100):
            data[offset] ^= 0xFF
        victim.unlink()  # a hard link to the signed copy: replace, do not write through
        victim.write_bytes(bytes(data))


def outsider_key(home: Path) -> Path:
    """GNUPGHOME of a signing key that no ISO carries (made once)."""
    if (home / "done").is_file():
        return home
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    _run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", OUTSIDER, "rsa2048", "sign",
         "never"],
        env=env,
    )  # fmt: skip
    (home / "done").touch()
    return home


def _tamper_rpm(packages: Path, outsider: Path) -> None:
    (original,) = (p for p in packages.glob("rpm-[0-9]*.rpm"))
    # outside the DVD's tree: createrepo_c would take any RPM left in it
    work = Path(tempfile.mkdtemp(prefix="hostile-rpm-", dir=outsider.parent))
    try:
        _rebuild_rpm(original, work, outsider)
    finally:
        shutil.rmtree(work)


def _rebuild_rpm(original: Path, work: Path, outsider: Path) -> None:
    """`original` replaced by a look-alike whose rpmkeys checks nothing, signed by `outsider`."""
    query = "%{NAME}\n%{EPOCH}\n%{VERSION}\n%{RELEASE}\n%{ARCH}\n"
    name, epoch, version, release, arch = _run(
        ["rpm", "-qp", "--nosignature", "--qf", query, str(original)]
    ).splitlines()
    requires = _run(["rpm", "-qp", "--nosignature", "--requires", str(original)]).splitlines()
    tree, top = work / "tree", work / "rpmbuild"
    tree.mkdir()
    # rpm2archive: the payload as a tar (no cpio needed on the host)
    with (
        original.open("rb") as package,
        subprocess.Popen(["rpm2archive", "-"], stdin=package, stdout=subprocess.PIPE) as unpack,
    ):
        subprocess.run(["tar", "-xzf", "-", "-C", str(tree)], stdin=unpack.stdout, check=True)
    source = work / "rpmkeys.c"
    source.write_text(FAKE_RPMKEYS)
    (tree / "usr/bin/rpmkeys").unlink()
    _run(["gcc", "-static", "-O2", "-o", str(tree / "usr/bin/rpmkeys"), str(source)])
    files = sorted(
        "/" + p.relative_to(tree).as_posix()
        for p in tree.rglob("*")
        if p.is_symlink() or not p.is_dir()
    )
    spec = work / "rpm.spec"
    spec.write_text(
        "\n".join(
            [
                "%global __os_install_post %{nil}",
                "%global debug_package %{nil}",
                f"Name: {name}",
                *([f"Epoch: {epoch}"] if epoch != "(none)" else []),
                f"Version: {version}",
                f"Release: {release}",
                "Summary: rpm, tampered with",
                "License: GPLv2+",
                "AutoReqProv: no",
                *(f"Requires: {r}" for r in requires if not r.startswith("rpmlib(")),
                "%description",
                "The distribution's rpm with an rpmkeys that checks nothing.",
                "%install",
                f"cp -a {tree}/. %{{buildroot}}/",
                "%files",
                *(f'"{f}"' for f in files),
                "",
            ]
        )
    )
    _run(["rpmbuild", "-bb", "--target", arch, "--define", f"_topdir {top}", str(spec)])
    (built,) = (top / "RPMS").rglob("*.rpm")
    _run(
        ["rpmsign", "--addsign", "--define", f"_gpg_name {OUTSIDER}", "--define",
         "__gpg /usr/bin/gpg", "--define", f"_gpg_path {outsider}", str(built)]
    )  # fmt: skip
    original.unlink()  # a hard link to the signed copy: replace, do not write through
    shutil.copyfile(built, original)
