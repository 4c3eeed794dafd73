#!/usr/libexec/nestcustom-emu/python3
"""Test-universe emulator of ``ostree container commit`` (ostree-rs-ext).

Installed as /usr/libexec/libostree/ext/ostree-container; the real Debian
``ostree`` binary dispatches unknown sub-commands (``ostree container ...``)
to ``/usr/libexec/libostree/ext/ostree-<name>`` with its argv unchanged.
Follows docs/contracts/nestos-rpm-ostree.md section 1; the emulated
version comes from /usr/lib/nestcustom-emu/versions (``ostree-ext=0.9.1``):
0.9.1 cleans /run, /tmp, /var/tmp, /var/cache and fails on content left in /var;
0.7.1 prints ``Checking /var for files`` and the files under /var (absolute paths,
the first 19 as upstream's ``error_count < 20``), cleans nothing and always exits 0.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

VERSIONS_FILE = Path(os.environ.get("NESTCUSTOM_EMU_VERSIONS", "/usr/lib/nestcustom-emu/versions"))
OSTREE_REPO_CONFIG = Path("/sysroot/ostree/repo/config")
FORCE_CLEAN_PATHS = ("run", "tmp", "var/tmp", "var/cache")
MAX_REPORTED = 19


class EmuError(Exception):
    """Printed as ``error: <message>``, exit 1."""


def ext_version() -> tuple[int, ...]:
    version = "0.9.1"
    if VERSIONS_FILE.exists():
        for line in VERSIONS_FILE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "ostree-ext":
                version = value.strip()
    return tuple(int(p) for p in re.findall(r"\d+", version))


def is_ostree_container() -> bool:
    try:
        config = OSTREE_REPO_CONFIG.read_text()
    except OSError:
        return False
    if not re.search(r"^\s*mode\s*=\s*bare-split-xattrs\s*$", config, re.MULTILINE):
        return False
    # ostree-rs-ext 0.9.1 container_utils.rs: a container-format repo means a container
    # build unless there is strong evidence otherwise (a systemd unit, a booted ostree host).
    if "container" in os.environ:
        return True
    if Path("/run/.containerenv").exists() or Path("/.dockerenv").exists():
        return True
    return "INVOCATION_ID" not in os.environ and not Path("/run/ostree-booted").exists()


def mount_points() -> set[str]:
    points: set[str] = set()
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return points
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


class Committer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.rootdev = os.lstat(root).st_dev
        self.mounts = mount_points()
        self.found: list[str] = []

    def foreign(self, path: Path, st: os.stat_result) -> bool:
        return st.st_dev != self.rootdev or str(path) in self.mounts

    def remove_tree(self, path: Path) -> bool:
        """Remove ``path`` recursively without crossing mounts; True if gone."""
        st = os.lstat(path)
        if self.foreign(path, st):
            return False
        if not stat.S_ISDIR(st.st_mode):
            path.unlink()
            return True
        gone = True
        for child in list(path.iterdir()):
            gone = self.remove_tree(child) and gone
        if gone:
            path.rmdir()
        return gone

    def clean(self, rel: str) -> None:
        top = self.root / rel
        try:
            st = os.lstat(top)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode) or self.foreign(top, st):
            return
        for child in list(top.iterdir()):
            self.remove_tree(child)

    def walk_var(self, path: Path, rel: str) -> bool:
        """Remove empty dirs under /var, record files; True if ``path`` was removed.

        A mount point is skipped as if it were not there, so removing its parent
        fails (``Validating: var/cache: Directory not empty``), as in 0.9.1.
        """
        empty = True
        for child in sorted(path.iterdir()):
            child_rel = f"{rel}/{child.name}"
            st = os.lstat(child)
            if self.foreign(child, st):
                continue
            if stat.S_ISDIR(st.st_mode):
                if not self.walk_var(child, child_rel):
                    empty = False
            else:
                self.found.append(child_rel)
                empty = False
        if empty:
            try:
                path.rmdir()
            except OSError as exc:
                raise EmuError(f"Validating: {rel}: {exc.strerror} (os error {exc.errno})") from exc
        return empty

    def list_var(self, path: Path) -> None:
        """0.7.1: record every file or symlink under /var (absolute paths), change nothing."""
        for child in sorted(path.iterdir()):
            st = os.lstat(child)
            if self.foreign(child, st):
                continue
            if stat.S_ISDIR(st.st_mode):
                self.list_var(child)
            else:
                self.found.append(str(child))

    def commit(self) -> None:
        for rel in FORCE_CLEAN_PATHS:
            self.clean(rel)
        var = self.root / "var"
        if var.is_dir() and not var.is_symlink():
            self.walk_var(var, "var")


def container_commit() -> int:
    if not is_ostree_container():
        raise EmuError("Not in an ostree-based container environment")
    committer = Committer(Path("/"))
    if ext_version() < (0, 8):
        # 0.7.1 (NestOS SP1): only reports what /var holds, cleans nothing, never fails.
        print("Checking /var for files", flush=True)
        var = Path("/var")
        if var.is_dir() and not var.is_symlink():
            committer.list_var(var)
        for path in committer.found[:MAX_REPORTED]:  # its error_count < 20 rule, too
            print(f'Found file: "{path}"', file=sys.stderr)
        return 0
    try:
        committer.commit()
    finally:  # 0.9.1 prints each file as it finds it, before any error
        for rel in committer.found[:MAX_REPORTED]:
            print(f'Found file: "{rel}"', file=sys.stderr)
    if committer.found:
        raise EmuError("Found content in var")
    return 0


def dispatch(argv: list[str]) -> int:
    args = list(argv)
    if args and args[0] == "container":
        args.pop(0)
    if not args or args[0] in {"-h", "--help"}:
        print("Usage: ostree container <commit|image|encapsulate|unencapsulate> ...")
        return 0 if args else 1
    if args[0] == "commit":
        if len(args) > 1 and args[1] not in {"--quiet", "-q"}:
            raise EmuError(f"Unexpected argument '{args[1]}'")
        return container_commit()
    raise EmuError(
        f"ostree container {args[0]}: not available in the nestcustom test-universe emulator"
    )


def main() -> int:
    try:
        return dispatch(sys.argv[1:])
    except EmuError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
