"""Inside a private mount and PID namespace: the ISO's own rpm installs the image root.

Run by install.py as ``unshare --mount --pid --fork --kill-child ... python -m
nestcustom.base.nsinstall REQUEST.json``. Everything mounted here (a small
tmpfs /dev with the usual device nodes and /proc, in the bootstrap root and in
the image root, and bind mounts of the image root and the extracted packages)
exists only in this namespace: it disappears with the last process in it, so
nothing is left mounted on the host, whatever happens. Killing this process (PID
1 of the namespace) kills every scriptlet too.

Steps, all with the bootstrap's (the ISO's) own rpm, chrooted into the bootstrap:
1. import the ISO's keys into a keyring outside the image's database and check
   every package's digests and signature against them (this rpm was itself
   checked by the host's rpm before it was unpacked: sigcheck.py);
2. install the resolved set into /mnt/sysimage (the image root): rpm orders
   the transaction, runs the scriptlets inside the image root, and writes the
   database where and in the format its own configuration says;
3. read the database back (what the image's rpm will list) and the files it owns;
4. a Berkeley DB database (EL8's rpm, which records install times from the
   clock) is made reproducible by rpmdbnorm: install times from
   SOURCE_DATE_EPOCH, rebuilt on a tmpfs, unused bytes zeroed, read back.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nestcustom.base import rpmdbnorm
from nestcustom.base.sigcheck import NO_VERDICT, verdict_ok, verdicts

SYSIMAGE = "/mnt/sysimage"
PACKAGES = "/mnt/packages"
NEWDB = "/mnt/rpmdb-normalized"  # a tmpfs: Berkeley DB's page size follows the file system
KEYRING = "/var/lib/nestcustom-keyring"
_DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "HOME": "/root"}


def _run(
    argv: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, env=env)


def _mount(*args: str) -> None:
    done = _run(["mount", *args])
    if done.returncode != 0:
        raise RuntimeError(f"mount {' '.join(args)}: {done.stderr.strip()}")


def _overlay(lower: Path, layers: Path, target: Path) -> None:
    """The kept bootstrap (isocache) at `target`, read-only below, writable above (tmp)."""
    upper, work = layers / "upper", layers / "work"
    for directory in (upper, work, target):
        directory.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    _mount("-t", "overlay", "-o", options, "overlay", str(target))


def _dev_and_proc(root: Path) -> None:
    """A tmpfs /dev with the device nodes scriptlets use, and /proc (this PID namespace's)."""
    (root / "dev").mkdir(exist_ok=True)
    (root / "proc").mkdir(exist_ok=True)
    _mount("-t", "tmpfs", "-o", "mode=0755,size=1m,nosuid", "tmpfs", str(root / "dev"))
    for name, (major, minor) in _DEVICES.items():
        node = root / "dev" / name
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        node.chmod(0o666)  # /dev/null and friends are world-writable by design
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        (root / "dev" / name).symlink_to(target)
    (root / "dev" / "stdout").symlink_to("/proc/self/fd/1")
    (root / "dev" / "stderr").symlink_to("/proc/self/fd/2")
    _mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", str(root / "proc"))


def _in_bootstrap(
    boot: Path, argv: Sequence[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return _run(["chroot", str(boot), *argv], env=env)


def _check_signatures(boot: Path, request: dict[str, Any]) -> list[str]:
    """Packages whose digests or signature do not verify against the ISO's keys."""
    env = dict(_ENV)
    keys = [f"{PACKAGES}/{k.lstrip('/')}" for k in request["keys"]]
    done = _in_bootstrap(boot, ["rpmkeys", "--dbpath", KEYRING, "--import", *keys], env)
    if done.returncode != 0:
        raise RuntimeError(f"the ISO's keys cannot be imported: {done.stderr.strip()[-500:]}")
    bad: list[str] = []
    # packages an earlier build of the same ISO verified, by their checksum (isocache)
    done_before = set(request.get("verified", []))
    files = [f"{PACKAGES}/{p}" for p in request["packages"] if p not in done_before]
    for start in range(0, len(files), 200):
        batch = files[start : start + 200]
        done = _in_bootstrap(boot, ["rpmkeys", "--dbpath", KEYRING, "--checksig", *batch], env)
        lines = verdicts(done.stdout, batch)
        for path in batch:
            verdict = lines.get(path, "not checked: " + done.stderr.strip()[-200:])
            if not verdict_ok(verdict):
                bad.append(f"{Path(path).name}: {verdict or NO_VERDICT}")
    return bad


def _install(boot: Path, request: dict[str, Any], progress: Path) -> tuple[int, str]:
    env = {**_ENV, "SOURCE_DATE_EPOCH": str(request["source_date_epoch"])}
    argv = ["rpm", "--root", SYSIMAGE, "-iv", "--nosignature"]
    for name, value in request["macros"].items():
        argv += ["--define", f"{name} {value}"]
    argv += request["rpm_options"]
    argv += [f"{PACKAGES}/{p}" for p in request["packages"]]
    total = len(request["packages"])
    names = set(request["nevras"])
    with progress.open("a") as report:
        proc = subprocess.Popen(
            ["chroot", str(boot), *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        done = 0
        tail: list[str] = []
        for line in proc.stdout:
            text = line.strip()
            if text in names:
                done += 1
                report.write(f"install {done}/{total} {text}\n")
                report.flush()
            elif text:
                tail = [*tail[-40:], text]
        return proc.wait(), "\n".join(tail)


def _query(boot: Path, fmt: str) -> list[str]:
    done = _in_bootstrap(boot, ["rpm", "--root", SYSIMAGE, "-qa", "--qf", fmt], dict(_ENV))
    if done.returncode != 0:
        raise RuntimeError(
            f"the ISO's rpm cannot read the new database: {done.stderr.strip()[-500:]}"
        )
    return done.stdout.splitlines()


def _backend(dbdir: Path) -> str:
    """The database's format, by its main file (as `diff` finds it in image layers)."""
    for main, backend in (("rpmdb.sqlite", "sqlite"), ("Packages.db", "ndb")):
        if (dbdir / main).is_file():
            return backend
    return "bdb" if rpmdbnorm.is_bdb(dbdir) else "unknown"


def _normalize_bdb(boot: Path, root: Path, dbpath: str, request: dict[str, Any]) -> int:
    """Make a Berkeley DB database reproducible (rpmdbnorm); headers rewritten, 0 if not BDB."""
    dbdir = root / dbpath.lstrip("/")
    if not rpmdbnorm.is_bdb(dbdir):
        return 0
    scratch = boot / NEWDB.lstrip("/")
    scratch.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", str(scratch))

    def run(argv: Sequence[str]) -> bytes:
        done = subprocess.run(["chroot", str(boot), *argv], capture_output=True, env=dict(_ENV))
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip()[-500:]
            raise rpmdbnorm.NormalizeError(f"{' '.join(argv[:2])} ... failed: {error}")
        return done.stdout

    return rpmdbnorm.normalize_database(
        run,
        dbpath=f"{SYSIMAGE}{dbpath}",
        image_root=root,
        image_dbdir=dbdir,
        scratch=NEWDB,
        scratch_on_host=scratch,
        epoch=int(request["source_date_epoch"]),
        owned=_query(boot, "[%{FILENAMES}\n]"),
    )


def main(argv: Sequence[str]) -> int:
    request: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    boot, root, iso = Path(request["bootstrap"]), Path(request["root"]), Path(request["iso"])
    result_path, progress = Path(request["result"]), Path(request["progress"])
    result: dict[str, Any] = {"ok": False}
    try:
        if request.get("bootstrap_lower"):
            _overlay(Path(request["bootstrap_lower"]), Path(request["overlay"]), boot)
        _dev_and_proc(boot)
        (boot / SYSIMAGE.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (boot / PACKAGES.lstrip("/")).mkdir(parents=True, exist_ok=True)
        _mount("--bind", str(root), str(boot / SYSIMAGE.lstrip("/")))
        _mount("--bind", str(iso), str(boot / PACKAGES.lstrip("/")))
        _mount("-o", "remount,bind,ro", str(boot / PACKAGES.lstrip("/")))
        _dev_and_proc(boot / SYSIMAGE.lstrip("/"))
        if request["gpgcheck"]:
            progress.open("a").write("phase verify\n")
            bad = _check_signatures(boot, request)
            if bad:
                result.update(kind="signature", problems=bad)
                return 0
        progress.open("a").write("phase install\n")
        started = time.monotonic()
        code, tail = _install(boot, request, progress)
        result["rpm_seconds"] = time.monotonic() - started
        if code != 0:
            result.update(kind="install", code=code, output=tail)
            return 0
        dbpath = _in_bootstrap(boot, ["rpm", "--eval", "%{_dbpath}"], dict(_ENV)).stdout.strip()
        progress.open("a").write("phase normalize\n")
        started = time.monotonic()
        result["normalized"] = _normalize_bdb(boot, root, dbpath, request)
        result["backend"] = _backend(root / dbpath.lstrip("/"))
        result["normalize_seconds"] = time.monotonic() - started
        result.update(
            ok=True,
            output=tail,
            installed=_query(
                boot, "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH} %{INSTALLTID}\n"
            ),
            owned=_query(boot, "[%{FILENAMES}\n]"),
            dbpath=dbpath,
            rpm_version=_in_bootstrap(boot, ["rpm", "--version"], dict(_ENV)).stdout.strip(),
        )
        return 0
    except rpmdbnorm.NormalizeError as exc:
        result.update(kind="normalize", output=str(exc))
        return 0
    except (RuntimeError, OSError) as exc:
        result.update(kind="namespace", output=str(exc))
        return 0
    finally:
        result_path.write_text(json.dumps(result))


if __name__ == "__main__":
    # The functions of the module by its package name, not of __main__: a mutation
    # run (bench/mutation) finds and swaps a function by its module's name.
    from nestcustom.base import nsinstall

    sys.exit(nsinstall.main(sys.argv[1:]))
