"""apt for another Debian release than the host's, through the host's own apt sources.

The EL8-like DVD is made from Debian bullseye (rpm 4.16 with BerkeleyDB, dnf
4.5, python 3.9) on a bookworm host. Nothing of the host's apt state changes:
bullseye's package lists live in a directory of the universe's cache, and
every apt call for it passes that directory and a sources list of its own
(`-o Dir::...`). The archive's address and keyring are the ones the host's
sources already use for its own release (`apt-get indextargets`), so this
works wherever the host's apt does, and names no mirror of its own.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_LIST_AGE = 7 * 24 * 3600  # refresh the lists once a week: bullseye only gets security fixes


@dataclass(frozen=True)
class AptSuite:
    """A Debian release apt can be asked about: the host's own (no options) or another one."""

    codename: str
    options: tuple[str, ...] = ()  # `-o KEY=VALUE` pairs that point apt at its lists

    @property
    def is_host(self) -> bool:
        return not self.options


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def host_codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("/etc/os-release names no VERSION_CODENAME")


def debian_archive() -> tuple[str, str]:
    """(URI, keyring) of the Debian archive the host's apt sources use for its own release."""
    codename = host_codename()
    out = _run(
        [
            "apt-get",
            "indextargets",
            "--format",
            "$(REPO_URI)\t$(RELEASE)\t$(COMPONENT)\t$(ORIGIN)\t$(SOURCESENTRY)",
            "Created-By: Packages",
        ]
    )
    for line in out.splitlines():
        uri, release, component, origin, entry = (line.split("\t") + [""] * 5)[:5]
        if release == codename and component == "main" and origin == "Debian":
            return uri, _keyring(entry)
    raise RuntimeError(
        f"the host's apt sources have no Debian {codename} main archive to take bullseye from"
    )


def _keyring(entry: str) -> str:
    """The Signed-By keyring of the sources entry FILE:LINE, or Debian's archive keyring."""
    default = "/usr/share/keyrings/debian-archive-keyring.gpg"
    path = Path(entry.rsplit(":", 1)[0]) if entry else None
    if path is None or not path.is_file():
        return default
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "signed-by" and value.strip().startswith("/"):
            return value.strip()
    return default


def other_suite(codename: str, home: Path) -> AptSuite:
    """`codename`'s main archive for this machine's architecture, lists kept under `home`."""
    lists, cache = home / "lists", home / "cache"
    sources, status = home / "sources.list", home / "status"
    options = (
        f"Dir::State::status={status}",  # no host package is "installed" in bullseye's view
        f"Dir::Etc::SourceList={sources}",
        "Dir::Etc::SourceParts=/dev/null",
        f"Dir::State::Lists={lists}",
        f"Dir::Cache={cache}",
        "Dir::Etc::Preferences=/dev/null",
        "Dir::Etc::PreferencesParts=/dev/null",
    )
    suite = AptSuite(codename, tuple(x for o in options for x in ("-o", o)))
    stamp = home / "updated"
    if stamp.is_file() and time.time() - stamp.stat().st_mtime < _LIST_AGE:
        return suite
    uri, keyring = debian_archive()
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (cache / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources.write_text(f"deb [signed-by={keyring}] {uri} {codename} main\n")
    status.write_text("")
    _run(["apt-get", *suite.options, "-q", "update"])
    stamp.touch()
    return suite
