"""Clean the installed root, and count what the optimized variant left out.

Cleaning (both variants) makes the root the same on every build and free of
one machine's traces: an empty machine-id (systemd makes one at first boot),
no logs, caches, temporary files or account-file backups that no package
owns, no rpm lock or shared-memory files, password ages clamped to the ISO's
date. Files a package owns are never touched, so `rpm -Va` stays clean.

The optimized variant's savings are read from the packages' own headers:
every regular file rpm skipped because it is documentation, a man or info
page, debug info or a locale other than C and English.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nestcustom import proc
from nestcustom.base.variants import Variant

_RPMFILE_DOC = 1 << 1
_KEEP_LANGS = {"", "C", "en", "en_US", "en_US.UTF-8", "en_US.utf8"}
_SCRUB = ("var/log", "var/cache", "var/lib/dnf", "var/tmp", "tmp", "run")
_DB_LEFTOVERS = (".rpm.lock", ".dbenv.lock", "rpmdb.sqlite-shm")


@dataclass(frozen=True)
class Savings:
    """Bytes (and files) the optimized variant left out, per category."""

    docs: tuple[int, int] = (0, 0)
    man_info: tuple[int, int] = (0, 0)
    locales: tuple[int, int] = (0, 0)
    debug: tuple[int, int] = (0, 0)
    caches: tuple[int, int] = (0, 0)
    logs: tuple[int, int] = (0, 0)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            name: {"bytes": value[0], "files": value[1]}
            for name, value in (
                ("docs", self.docs),
                ("man/info", self.man_info),
                ("locales", self.locales),
                ("debug info", self.debug),
                ("caches", self.caches),
                ("logs", self.logs),
            )
        }


def _category(flags: int, lang: str, path: str) -> str | None:
    if path.startswith(("/usr/lib/debug/", "/usr/src/debug/")):
        return "debug"
    if path.startswith(("/usr/share/man/", "/usr/share/info/")):
        return "man_info"
    if flags & _RPMFILE_DOC:
        return "docs"
    if lang not in _KEEP_LANGS and not lang.startswith("en_"):
        return "locales"
    return None


def left_out(rpms: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """Per category, (bytes, files) of the regular files the optimized install skips."""
    rpm = proc.require("rpm", "rpm")
    files = [str(p) for p in rpms]
    totals: dict[str, list[int]] = {}
    fmt = "[%{FILEFLAGS}\t%{FILESIZES}\t%{FILELANGS}\t%{FILEMODES}\t%{FILENAMES}\n]"
    for start in range(0, len(files), 200):
        done = proc.run(
            [rpm, "-qp", "--nosignature", "--nodigest", "--qf", fmt, *files[start : start + 200]],
            timeout=600,
        )
        for line in done.stdout.splitlines():
            parts = line.split("\t", 4)
            if len(parts) != 5 or not stat.S_ISREG(int(parts[3]) & 0xFFFF):
                continue
            category = _category(int(parts[0]), parts[2], parts[4])
            if category:
                entry = totals.setdefault(category, [0, 0])
                entry[0] += int(parts[1])
                entry[1] += 1
    return {k: (v[0], v[1]) for k, v in totals.items()}


def _remove_unowned(root: Path, top: str, owned: frozenset[str]) -> tuple[int, int]:
    """Remove what no package owns under root/top; (bytes, files) removed."""
    base = root / top
    if not base.is_dir() or base.is_symlink():
        return 0, 0
    removed = [0, 0]
    for path in sorted(base.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        rel = "/" + path.relative_to(root).as_posix()
        if rel in owned:
            continue
        if path.is_symlink() or not path.is_dir():
            removed[0] += path.lstat().st_size
            removed[1] += 1
            path.unlink()
        elif not any(path.iterdir()):
            path.rmdir()
    return removed[0], removed[1]


def _clamp_password_ages(root: Path, day: int) -> None:
    """Days of the last password change (useradd writes today) -> the ISO's day."""
    for name in ("etc/shadow", "etc/gshadow"):
        path = root / name
        if not path.is_file() or name == "etc/gshadow":
            continue
        lines = []
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit() and int(fields[2]) > day:
                fields[2] = str(day)
            lines.append(":".join(fields))
        mode = path.stat().st_mode
        path.write_text("\n".join(lines) + "\n")
        path.chmod(stat.S_IMODE(mode))


def clean_root(
    root: Path,
    *,
    owned: frozenset[str],
    dbpath: str,
    variant: Variant,
    source_date_epoch: int,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Clean the root in place; returns ((bytes, files) of caches, of logs) removed."""
    machine_id = root / "etc" / "machine-id"
    if machine_id.parent.is_dir():
        machine_id.write_text("")
        machine_id.chmod(0o444)
    caches = _remove_unowned(root, "var/cache", owned)
    logs = _remove_unowned(root, "var/log", owned)
    for top in _SCRUB:
        _remove_unowned(root, top, owned)
    etc = root / "etc"
    for backup in ("passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-", ".pwd.lock"):
        path = etc / backup
        if path.exists() and f"/etc/{backup}" not in owned:
            path.unlink()
    db = root / dbpath.lstrip("/")
    for leftover in _DB_LEFTOVERS:
        (db / leftover).unlink(missing_ok=True)
    for region in db.glob("__db.*"):
        region.unlink()
    wal = db / "rpmdb.sqlite-wal"
    if wal.exists() and wal.stat().st_size == 0:
        wal.unlink()
    _clamp_password_ages(root, source_date_epoch // 86400)
    for name, text in variant.image_macros:
        target = root / "etc" / "rpm" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o644)
    return caches, logs


def settle_times(root: Path, since: float, epoch: int) -> int:
    """Give every entry changed during the install (since `since`) the ISO's time.

    Files rpm lays down keep the times their packages recorded (so `rpm -V`
    finds nothing to report); what the install itself created or touched
    (directories, scriptlet output, the database) would carry the build's
    clock, so it gets SOURCE_DATE_EPOCH. Returns how many entries changed.
    """
    changed = 0
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if info.st_mtime >= since:
            os.utime(path, (epoch, epoch), follow_symlinks=False)
            changed += 1
    return changed


def remove_tree(path: Path) -> None:
    """Remove a work tree that holds a root filesystem (any owner, any mode)."""
    if path.exists():
        shutil.rmtree(path)
