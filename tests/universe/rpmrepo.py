"""The test universe's RPM repository: real RPMs, a real repo, served over HTTP.

Packages (see tests/universe/rpms/):

* specs/*.spec, built with rpmbuild (noarch, version 1.0-1):
  nc-hello (requires nc-libgreet; man page and docs), nc-libgreet,
  nc-scriptlet (%post writes /usr/share/nc-scriptlet/post-ran),
  nc-varwriter (/var/lib/nc-varwriter/state), nc-sysuser (user ncsvc),
  nc-optapp (/opt/nc-optapp/bin/tool).
  nc-hello is built a second time as 2.0-1 into ``extra_path``, outside the repo.
* repack/PACKAGES: real Debian bookworm programs fetched with
  ``apt-get download`` and repackaged unchanged by repack/deb-repack.spec:
  strace (+ libunwind8) and jq (+ libjq1 + libonig5), for the machine's
  architecture. They run in a Debian bookworm root filesystem, which provides
  libc6 and liblzma5.

Usage: ``python -m tests.universe.rpmrepo DIR`` builds the repo into DIR and
prints the package map; add ``--serve`` to serve it until interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .httpserve import QuietHTTPServer

RPMS_DIR = Path(__file__).resolve().parent / "rpms"
SPECS_DIR = RPMS_DIR / "specs"
REPACK_SPEC = RPMS_DIR / "repack" / "deb-repack.spec"
REPACK_LIST = RPMS_DIR / "repack" / "PACKAGES"
UPDATEINFO = RPMS_DIR / "updateinfo.xml"  # NCSA-2026-0001: nc-hello < 2.0 is exposed

#: Bump when the way the inputs are turned into a repo changes.
_FORMAT = "1"
_STAMP = "build-stamp.json"
_EXTRA_URL_PREFIX = "/extra"

#: nc-hello versions built into extra_path rather than the repo.
_EXTRA_BUILDS: tuple[tuple[str, str], ...] = (("nc-hello.spec", "2.0"),)

_DEB_TO_RPM_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "all": "noarch", "i386": "i686"}


@dataclass(frozen=True)
class RpmRepo:
    path: Path  # directory with repodata/ (createrepo_c output) and the .rpm files
    extra_path: Path  # directory holding RPMs NOT in the repo (e.g. nc-hello-2.0), served too
    packages: Mapping[str, str]  # name -> "name-version-release.arch" for every package in the repo


def _run(cmd: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> str:
    args = [os.fspath(c) for c in cmd]
    try:
        proc = subprocess.run(args, check=True, capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError as exc:
        raise RuntimeError(f"command failed: {shlex.join(args)}: {exc}") from exc
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"command failed (exit {exc.returncode}): {shlex.join(args)}\n{exc.stderr}"
        ) from exc
    return proc.stdout


def _inputs_hash() -> str:
    """Hash of everything under rpms/ (specs, repack list) plus the build format."""
    h = hashlib.sha256(f"format {_FORMAT}\n".encode())
    for f in sorted(p for p in RPMS_DIR.rglob("*") if p.is_file()):
        h.update(f.relative_to(RPMS_DIR).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


def _repack_list() -> list[tuple[str, str | None]]:
    """(debian package, rpm Requires or None) from repack/PACKAGES."""
    entries: list[tuple[str, str | None]] = []
    for raw in REPACK_LIST.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        deb, _, requires = line.partition(" ")
        requires = requires.strip()
        entries.append((deb, None if requires in ("", "-") else requires))
    return entries


def _rpmbuild(topdir: Path, spec: Path, defines: Mapping[str, str]) -> list[Path]:
    """rpmbuild -bb SPEC; return the RPMs it wrote."""
    rpmdir = topdir / "RPMS"
    before = set(rpmdir.rglob("*.rpm"))
    cmd: list[str | os.PathLike[str]] = [
        "rpmbuild",
        "-bb",
        "--define",
        f"_topdir {topdir}",
        "--define",
        "_binary_payload w9.gzdio",
        "--define",
        "__os_install_post %{nil}",
        "--define",
        "debug_package %{nil}",
        "--define",
        "_build_id_links none",
    ]
    for key, value in defines.items():
        cmd += ["--define", f"{key} {value}"]
    cmd.append(spec)
    _run(cmd)
    built = sorted(set(rpmdir.rglob("*.rpm")) - before)
    if not built:
        raise RuntimeError(f"rpmbuild of {spec} produced no RPM")
    return built


def _deb_field(deb: Path, field: str) -> str:
    return _run(["dpkg-deb", "-f", deb, field]).strip()


def _repack_debs(topdir: Path, debdir: Path) -> list[Path]:
    entries = _repack_list()
    debdir.mkdir(parents=True, exist_ok=True)
    for old in debdir.glob("*.deb"):
        old.unlink()
    # apt-get download fetches the candidate version for the host architecture.
    _run(["apt-get", "download", *(deb for deb, _ in entries)], cwd=debdir)
    rpms: list[Path] = []
    for deb_name, requires in entries:
        matches = sorted(debdir.glob(f"{deb_name}_*.deb"))
        if len(matches) != 1:
            raise RuntimeError(f"expected one .deb for {deb_name} in {debdir}, got {matches}")
        deb = matches[0]
        full_version = _deb_field(deb, "Version")
        epoch, _, upstream = full_version.rpartition(":")  # epoch "" when there is none
        version, _, release = upstream.rpartition("-")
        if not version:  # native package: no Debian revision
            version, release = upstream, "0"
        deb_arch = _deb_field(deb, "Architecture")
        try:
            arch = _DEB_TO_RPM_ARCH[deb_arch]
        except KeyError:
            raise RuntimeError(f"{deb}: unsupported Debian architecture {deb_arch!r}") from None
        defines = {
            "rp_name": deb_name,
            "rp_debname": deb_name,
            "rp_version": version.replace("-", "_"),
            "rp_release": release.replace("-", "_"),
            "rp_arch": arch,
            "rp_deb": str(deb),
            "rp_filelist": str(topdir / f"{deb_name}.files"),
        }
        if epoch:
            defines["rp_epoch"] = epoch
        if requires:
            defines["rp_requires"] = requires
        rpms += _rpmbuild(topdir, REPACK_SPEC, defines)
    return rpms


def _nvra(rpm: Path) -> tuple[str, str]:
    out = _run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{NAME} %{NEVRA}", rpm])
    name, _, nevra = out.strip().partition(" ")
    # NEVRA includes "E:" only when there is an epoch; the map wants name-version-release.arch.
    if ":" in nevra:
        nevra = name + "-" + nevra.split(":", 1)[1]
    return name, nevra


def _load_cached(workdir: Path, inputs: str) -> RpmRepo | None:
    stamp = workdir / _STAMP
    try:
        data: dict[str, Any] = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if data.get("inputs") != inputs:
        return None
    repo, extra = workdir / "repo", workdir / "extra"
    files: list[str] = data.get("repo_files", [])
    extra_files: list[str] = data.get("extra_files", [])
    if not (repo / "repodata" / "repomd.xml").is_file():
        return None
    if not all((repo / f).is_file() for f in files) or not all(
        (extra / f).is_file() for f in extra_files
    ):
        return None
    return RpmRepo(path=repo, extra_path=extra, packages=dict(data["packages"]))


def build_repo(workdir: Path) -> RpmRepo:
    """Build all RPMs (rpmbuild + repackaged .debs) into workdir and run createrepo_c.

    Layout: workdir/repo (the repository), workdir/extra (RPMs outside it),
    workdir/build (rpmbuild tree, .debs). If workdir already holds a complete
    build of the same inputs (hash in workdir/build-stamp.json), it is returned
    as is.
    """
    workdir = Path(workdir).resolve()
    inputs = _inputs_hash()
    cached = _load_cached(workdir, inputs)
    if cached is not None:
        return cached

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / _STAMP).unlink(missing_ok=True)
    repo, extra, build = workdir / "repo", workdir / "extra", workdir / "build"
    for d in (repo, extra, build):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    topdir = build / "rpmbuild"

    repo_rpms: list[Path] = []
    for spec in sorted(SPECS_DIR.glob("*.spec")):
        repo_rpms += _rpmbuild(topdir, spec, {})
    repo_rpms += _repack_debs(topdir, build / "debs")
    extra_rpms: list[Path] = []
    for spec_name, version in _EXTRA_BUILDS:
        extra_rpms += _rpmbuild(topdir, SPECS_DIR / spec_name, {"nc_version": version})

    packages: dict[str, str] = {}
    for rpm in repo_rpms:
        name, nvra = _nvra(rpm)
        if name in packages:
            raise RuntimeError(f"two RPMs named {name} for the repo: {packages[name]}, {nvra}")
        packages[name] = nvra
        shutil.copy2(rpm, repo / rpm.name)
    for rpm in extra_rpms:
        shutil.copy2(rpm, extra / rpm.name)
    _run(["createrepo_c", "--quiet", "--no-database", repo])
    # The security advisory `nestcustom advisories` and `build --fail-on` read.
    _run(["modifyrepo_c", "--mdtype", "updateinfo", UPDATEINFO, repo / "repodata"])

    packages = dict(sorted(packages.items()))
    stamp = {
        "inputs": inputs,
        "packages": packages,
        "repo_files": sorted(r.name for r in repo_rpms),
        "extra_files": sorted(r.name for r in extra_rpms),
    }
    (workdir / _STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return RpmRepo(path=repo, extra_path=extra, packages=packages)


class _RepoHandler(SimpleHTTPRequestHandler):
    """Serves its ``directory``, and ``extra_directory`` under /extra/."""

    extra_directory: str = ""

    def __init__(self, *args: Any, extra_directory: str, **kwargs: Any) -> None:
        self.extra_directory = extra_directory
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        url_path = urlsplit(path).path
        if url_path == _EXTRA_URL_PREFIX or url_path.startswith(_EXTRA_URL_PREFIX + "/"):
            root = self.directory
            self.directory = self.extra_directory
            try:
                return super().translate_path(path[len(_EXTRA_URL_PREFIX) :] or "/")
            finally:
                self.directory = root
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_repo(repo: RpmRepo) -> Iterator[str]:
    """Serve repo.path at http://127.0.0.1:<free port>/ and repo.extra_path under /extra/.

    Yields the base URL (ending in '/'). The server runs in a background thread
    and is shut down on exit.
    """
    handler = partial(_RepoHandler, directory=str(repo.path), extra_directory=str(repo.extra_path))
    server = QuietHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="rpm-repo-http", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def repo_file(base_url: str, repo_id: str = "nctest") -> str:
    """Text of a yum .repo file pointing at base_url, gpgcheck=0."""
    return (
        f"[{repo_id}]\n"
        f"name=nestcustom test universe ({repo_id})\n"
        f"baseurl={base_url}\n"
        "enabled=1\n"
        "gpgcheck=0\n"
        "repo_gpgcheck=0\n"
        "metadata_expire=0\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.universe.rpmrepo", description="Build the test universe RPM repo."
    )
    parser.add_argument("dir", type=Path, help="work directory (reused as a cache)")
    parser.add_argument("--serve", action="store_true", help="serve it until interrupted")
    args = parser.parse_args(argv)
    repo = build_repo(args.dir)
    print(f"repo:  {repo.path}")
    print(f"extra: {repo.extra_path}")
    for name, nvra in repo.packages.items():
        print(f"  {name:<14} {nvra}")
    if args.serve:
        with serve_repo(repo) as url:
            print(f"serving at {url} (extra RPMs under {url}extra/); Ctrl-C to stop")
            print(repo_file(url), end="")
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
