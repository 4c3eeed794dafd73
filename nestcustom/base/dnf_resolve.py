"""Resolve a package set against the DVD's repositories with dnf (libsolv), and nothing else.

A standalone program, run by resolve.py with the system's python3 (the one
Debian's python3-dnf is installed for): it reads a JSON request on stdin and
writes a JSON answer on stdout. It never installs, downloads or touches the
host's package state: the install root is an empty temporary directory, the
host's dnf configuration and repositories are not read, and only the
repositories in the request (file:// URLs of the ISO's metadata) are used.

dnf does what a resolver of a RHEL-like DVD has to do: comps groups (@core),
EL8 modular filtering (packages of non-default module streams are hidden),
weak dependencies, best candidates, and architecture compatibility.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import dnf
import dnf.exceptions
import dnf.module.module_base
import hawkey


def _package(pkg: Any) -> dict[str, Any]:
    kind, digest = pkg.chksum if pkg.chksum else (None, b"")
    return {
        "name": pkg.name,
        "epoch": int(pkg.epoch),
        "version": pkg.version,
        "release": pkg.release,
        "arch": pkg.arch,
        "repo": pkg.reponame,
        "location": pkg.location,
        "checksum_type": hawkey.chksum_name(kind) if kind is not None else "",
        "checksum": digest.hex() if isinstance(digest, bytes) else str(digest),
        "size": int(pkg.downloadsize),
        "install_size": int(pkg.installsize),
    }


def _base(request: dict[str, Any], weak_deps: bool) -> Any:
    base = dnf.Base()
    conf = base.conf
    conf.installroot = request["installroot"]
    conf.cachedir = request["cachedir"]
    conf.logdir = request.get("logdir", request["cachedir"])
    conf.persistdir = conf.logdir + "/persist"
    conf.reposdir = []
    conf.varsdir = []
    conf.pluginpath = []
    conf.gpgcheck = False  # signatures are checked against the ISO's keys before installing
    conf.install_weak_deps = weak_deps
    conf.best = True
    conf.assumeyes = True
    conf.substitutions["arch"] = request["arch"]
    conf.substitutions["basearch"] = request["basearch"]
    conf.substitutions["releasever"] = request["releasever"]
    if request.get("platform"):
        conf.module_platform_id = request["platform"]
    for repo in request["repos"]:
        base.repos.add_new_repo(
            repo["id"], conf, baseurl=[repo["baseurl"]], gpgcheck=False, metadata_expire="-1"
        )
    base.fill_sack(load_system_repo=False, load_available_repos=True)
    base.read_comps(arch_filter=True)
    return base


def _mark(base: Any, specs: list[str], optional: list[str]) -> None:
    for spec in specs:
        if spec.startswith("@") and ":" in spec:  # @module:stream[/profile]
            dnf.module.module_base.ModuleBase(base).install([spec[1:]])
        elif spec.startswith("@"):
            name = spec[1:]
            group = base.comps.group_by_pattern(name)
            environment = base.comps.environment_by_pattern(name)
            if group is not None:
                base.group_install(group.id, ("mandatory", "default"), strict=True)
            elif environment is not None:
                base.environment_install(environment.id, ("mandatory", "default"), strict=True)
            else:
                raise dnf.exceptions.MarkingError(f"no group or environment named {name}", spec)
        else:
            base.install(spec, strict=True)
    for name in optional:  # e.g. a minimal langpack: only where the distribution has one
        if base.sack.query().available().filter(name=name):
            base.install(name)


def resolve(request: dict[str, Any]) -> dict[str, Any]:
    base = _base(request, request["weak_deps"])
    try:
        _mark(base, request["specs"], request.get("optional", []))
        base.resolve()
    except dnf.exceptions.MarkingErrors as exc:
        missing = sorted(set(exc.no_match_pkg_specs) | set(exc.no_match_group_specs))
        detail = "; ".join(str(e) for e in exc.module_depsolv_errors or ()) or str(exc)
        return {"ok": False, "kind": "nomatch", "missing": missing, "message": detail}
    except dnf.exceptions.MarkingError as exc:
        return {
            "ok": False,
            "kind": "nomatch",
            "missing": [str(exc.pkg_spec or "")],
            "message": str(exc),
        }
    except dnf.exceptions.DepsolveError as exc:
        return {"ok": False, "kind": "depsolve", "missing": [], "message": str(exc)}
    image = [_package(p) for p in base.transaction.install_set]
    # The bootstrap: the ISO's own rpm, which writes the image's database in its own format.
    base.reset(goal=True)
    base.conf.install_weak_deps = False
    bootstrap: list[dict[str, Any]] = []
    try:
        for spec in request["bootstrap"]:
            base.install(spec, strict=True)
        base.resolve()
        bootstrap = [_package(p) for p in base.transaction.install_set]
    except dnf.exceptions.Error as exc:
        return {
            "ok": False,
            "kind": "bootstrap",
            "missing": request["bootstrap"],
            "message": str(exc),
        }
    modules = []
    try:
        container = base._moduleContainer
        for module in container.getModulePackages():
            if container.isEnabled(module.getName(), module.getStream()):
                modules.append(f"{module.getName()}:{module.getStream()}")
    except Exception:  # noqa: S110 - modular info is a report detail only
        pass
    return {"ok": True, "packages": image, "bootstrap": bootstrap, "modules": sorted(set(modules))}


def main() -> int:
    request = json.load(sys.stdin)
    try:
        answer = resolve(request)
    except dnf.exceptions.RepoError as exc:
        answer = {"ok": False, "kind": "repo", "missing": [], "message": str(exc)}
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
