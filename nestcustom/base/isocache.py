"""What one ISO always gives, kept between builds: the bootstrap root and the resolver's metadata.

mock keeps its bootstrap chroot in /var/cache/mock and reuses it until its
configuration changes; here the key is the ISO's content: one entry per ISO
sha256 under CACHE/base/, holding

* meta/: the repositories' metadata as copied off the ISO, and dnf/: dnf's
  cache of it (libsolv's .solv files), so a second resolve reads no XML;
* bootstrap-KEY/: the ISO's rpm unpacked and signature-checked (KEY: the
  digest of the bootstrap's packages and their checksums); the install
  namespace mounts it read-only under an overlay, so it is never changed;
* verified.json: the repository checksums (sha256 or stronger) of packages
  whose signature the ISO's rpm has checked: a package copied off the ISO
  with the same checksum is the same bytes, and is not checked again.

An ISO is only hashed in full once: an index maps the file's identity
(device, inode, size, modification and change times; any write changes the
change time, which no user can set) to its sha256. The full hash still runs
on every build, beside the work, for the image's label; a build whose ISO
turns out not to be the one the index named is stopped before anything is
tagged (pipeline). A changed ISO is a new entry; the oldest entries beyond
KEEP go.

Entries are written under a temporary name and renamed into place, so a
build that is stopped, or a second build running at the same time, never
sees half an entry. The cache directory must belong to root and be closed to
others, or it is not used: a bootstrap from it runs as root.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nestcustom.errors import NestcustomError

KEEP = 4  # entries (ISOs) kept
_FORMAT = "1"  # bump when what an entry holds changes


class CacheUnsafe(Exception):
    """The cache directory could be written by someone else than root."""


@dataclass(frozen=True)
class IsoCache:
    root: Path  # CACHE/base

    @property
    def index(self) -> Path:
        return self.root / "index.json"

    def entry(self, sha256: str) -> Entry:
        path = self.root / f"iso-{sha256}-v{_FORMAT}"
        path.mkdir(mode=0o700, exist_ok=True)
        os.utime(path)  # its time says when it was last used (pruning)
        return Entry(path, sha256)


@dataclass(frozen=True)
class Entry:
    path: Path
    sha256: str

    @property
    def metadata(self) -> Path:
        return self.path / "meta"

    @property
    def dnf(self) -> Path:
        return self.path / "dnf"

    @property
    def verdicts(self) -> Path:
        return self.path / "verified.json"

    def verified(self) -> frozenset[str]:
        """Checksums (TYPE:HEX) of packages whose signature an earlier build checked."""
        try:
            return frozenset(str(x) for x in json.loads(self.verdicts.read_text()))
        except (OSError, ValueError, TypeError):
            return frozenset()

    def add_verified(self, checksums: Iterable[str]) -> None:
        merged = sorted(self.verified() | set(checksums))
        fd, tmp = tempfile.mkstemp(prefix=".verified-", dir=self.path)
        with os.fdopen(fd, "w") as handle:
            json.dump(merged, handle, indent=0)
        Path(tmp).replace(self.verdicts)

    def bootstrap(self, key: str) -> Path | None:
        """The cached bootstrap root for `key`, or None."""
        path = self.path / f"bootstrap-{key}"
        return path if path.is_dir() else None

    def store(self, name: str, make: Callable[[Path], object]) -> Path:
        """Make `name` in the entry with make(directory), atomically; the kept directory."""
        final = self.path / name
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.path))
        try:
            make(tmp)
            tmp.chmod(0o755)
            try:
                tmp.rename(final)
            except OSError:  # another build was faster: keep its copy
                if not final.is_dir():
                    raise
        finally:
            remove(tmp)
        return final


def open_cache(directory: Path | None) -> IsoCache | None:
    """The cache under `directory` (made 0700 when missing); None when caching is off."""
    if directory is None:
        return None
    if any(c in str(directory) for c in ",:\n"):  # it becomes an overlay mount option
        raise CacheUnsafe(f"{directory}: a cache directory's path holds no ',' or ':'")
    root = directory / "base"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (directory, root):
        path.mkdir(mode=0o700, exist_ok=True)  # only after its parent was found safe
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            raise CacheUnsafe(f"{path} is a link, or not owned by this user, or writable by others")
    return IsoCache(root)


def identity(iso: Path) -> str:
    """What changes whenever the file's content can have changed."""
    info = iso.resolve().stat()
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def _read_index(cache: IsoCache) -> dict[str, str]:
    try:
        data = json.loads(cache.index.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def known_sha256(cache: IsoCache, iso: Path) -> str | None:
    """The ISO's sha256 as the index recorded it for this very file, or None."""
    return _read_index(cache).get(identity(iso))


def remember(cache: IsoCache, iso: Path, sha256: str) -> None:
    """Record the ISO's sha256 for its identity; prune entries beyond KEEP."""
    index = _read_index(cache)
    index[identity(iso)] = sha256
    entries = sorted(
        (p for p in cache.root.glob("iso-*") if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in entries[KEEP:]:
        remove(old)
    for entry in entries[:KEEP]:  # what builds killed outright (SIGKILL) left half-made
        for half in entry.glob(".*-*"):
            if time.time() - half.stat().st_mtime > 3600:
                remove(half)
    alive = {p.name.split("-")[1] for p in entries[:KEEP]}
    index = {k: v for k, v in index.items() if v in alive or v == sha256}
    fd, tmp = tempfile.mkstemp(prefix=".index-", dir=cache.root)
    with os.fdopen(fd, "w") as handle:
        json.dump(index, handle, indent=1, sort_keys=True)
    Path(tmp).replace(cache.index)


def forget(cache: IsoCache, sha256: str) -> None:
    """Drop an entry and every index line naming it (its ISO was not what the index said)."""
    remove(cache.root / f"iso-{sha256}-v{_FORMAT}")
    index = {k: v for k, v in _read_index(cache).items() if v != sha256}
    with contextlib.suppress(OSError):
        cache.index.write_text(json.dumps(index, indent=1, sort_keys=True))


def remove(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def locked(cache: IsoCache) -> Iterator[None]:
    """Serialize index updates between concurrent builds."""
    import fcntl

    with (cache.root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def open_or_warn(directory: Path | None) -> tuple[IsoCache | None, list[str]]:
    """The cache, or None (off, or unsafe: then a warning says why, and the build goes on)."""
    try:
        return open_cache(directory), []
    except (CacheUnsafe, OSError) as exc:
        return None, [f"the cache is not used: {exc}"]


def first_entry(cache: IsoCache, sha256: str, meta: Path) -> Entry:
    """The ISO's entry, with the metadata this build copied into `meta`."""
    entry = cache.entry(sha256)
    entry.store("meta", lambda tmp: shutil.copytree(meta, tmp, dirs_exist_ok=True))
    return entry


def check_and_remember(cache: IsoCache, iso: Path, early: str | None, sha256: str) -> None:
    """Record the ISO's sha256; stop when the index had named another content for it."""
    with locked(cache):
        if early is not None and early != sha256:
            forget(cache, early)
            raise NestcustomError(
                f"{iso} is not the file an earlier build cached as sha256 {early[:12]}... "
                "(it changed during the build?); the cached entry was dropped, nothing tagged",
                "run the build again",
            )
        remember(cache, iso, sha256)
