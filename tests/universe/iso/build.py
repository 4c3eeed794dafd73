"""DVD-like NewStart ISOs for the test universe, built with xorriso from real RPMs.

What goes on them: the Debian userland repackaged by debian.py (bash, coreutils,
rpm, dnf, systemd, strace, jq ... with their docs, man pages and translations),
the NewStart system packages of specs/newstart-base.spec, and the universe's
nc-* packages (nc-hello 1.0 and 2.0 as two streams of a module). Every RPM is
signed with the universe's key, whose public half is on the ISO as
RPM-GPG-KEY-newstart.

Layouts:
* ``treeinfo`` (EL8): .treeinfo with BaseOS and AppStream variants, comps in
  BaseOS, modular metadata (modules.yaml, with defaults) in AppStream;
* ``flat`` (EL7): one repository at the root (Packages/, repodata/), an old
  .treeinfo without variants.

Everything is cached under CACHE/iso, keyed by the content of its inputs.

    python -m tests.universe.iso.build [--layout treeinfo|flat] [--dbpath PATH]
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..rpmrepo import build_repo
from . import debian

HERE = Path(__file__).resolve().parent
SPEC = HERE / "specs" / "newstart-base.spec"
CACHE = Path(os.environ.get("NC_UNIVERSE_CACHE", "/var/tmp/nestcustom-universe")) / "iso"
KEY_NAME = "NewStart Universe Signing Key <security@newstart.example>"
VOLUME = "NewStart-CGS-6.06-x86_64"
TIMESTAMP = 1699617600  # 2023-11-10 12:00 UTC: the ISO's build time
_FORMAT = "3"  # bump when the way ISOs are made changes

#: The universe's nc-* packages on the ISO (AppStream in the treeinfo layout).
NC_PACKAGES = ("nc-libgreet", "nc-hello", "nc-scriptlet", "nc-optapp")

CORE_MANDATORY = (
    "filesystem",
    "setup",
    "newstart-release",
    "newstart-rpm-config",
    "bash",
    "coreutils",
    "libc-bin",
    "rpm",
    "dnf",
    "systemd",
    "passwd",
    "mount",
    "procps",
    "grep",
    "sed",
    "findutils",
    "tar",
    "gzip",
    "libcap2-bin",
    "nc-owned",
)
CORE_DEFAULT = ("less",)
CORE_OPTIONAL = ("strace",)


@dataclass(frozen=True)
class Iso:
    path: Path
    layout: str
    dbpath: str
    key: Path  # the public signing key (also on the ISO)
    packages: dict[str, str] = field(default_factory=dict)  # name -> N-V-R.A of every RPM on it
    modular: dict[str, str] = field(default_factory=dict)  # name -> NVRA a default stream gives


def _run(argv: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@contextmanager
def _lock(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- inputs -------------------------------------------------------------------------------


def signing_key() -> tuple[Path, Path]:
    """(GNUPGHOME, public key file) of the universe's signing key, made once."""
    home, public = CACHE / "gnupg", CACHE / "RPM-GPG-KEY-newstart"
    if public.is_file():
        return home, public
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    _run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            KEY_NAME,
            "rsa2048",
            "sign",
            "never",
        ],
        env=env,
    )
    exported = _run(["gpg", "--batch", "--armor", "--export", KEY_NAME], env=env)
    public.with_suffix(".tmp").write_text(exported)
    public.with_suffix(".tmp").rename(public)
    return home, public


def debian_rpms() -> list[Path]:
    """The repackaged Debian userland (cached by package versions and the repack code)."""
    roots = (*debian.BASEOS_ROOTS, *debian.APPSTREAM_ROOTS)
    debs = debian.package_set(roots)
    key = _digest(
        sorted((d.name, d.version) for d in debs.values()),
        _file_digest(Path(debian.__file__)),
        _FORMAT,
    )
    out = CACHE / f"debian-{key}"
    stamp = out / "rpms.json"
    if stamp.is_file():
        return [out / name for name in json.loads(stamp.read_text())]
    shutil.rmtree(out, ignore_errors=True)
    rpms = debian.repack(debs, out / "work")
    (out / "rpms").mkdir()
    kept = []
    for rpm in rpms:
        shutil.move(str(rpm), out / "rpms" / rpm.name)
        kept.append(f"rpms/{rpm.name}")
    shutil.rmtree(out / "work")
    stamp.write_text(json.dumps(sorted(kept)))
    return [out / name for name in sorted(kept)]


def appstream_names() -> set[str]:
    """Debian packages only the AppStream tools need (the rest is BaseOS)."""
    base = set(debian.package_set(debian.BASEOS_ROOTS))
    every = set(debian.package_set((*debian.BASEOS_ROOTS, *debian.APPSTREAM_ROOTS)))
    return every - base


def base_rpms(dbpath: str, key: Path) -> list[Path]:
    """filesystem, setup, newstart-release, newstart-rpm-config, nc-owned for `dbpath`."""
    tag = _digest(SPEC.read_text(), dbpath, _file_digest(key), _FORMAT)
    out = CACHE / f"base-{tag}"
    if (out / "done").is_file():
        return sorted((out / "RPMS").rglob("*.rpm"))
    shutil.rmtree(out, ignore_errors=True)
    _run(
        [
            "rpmbuild",
            "-bb",
            "--define",
            f"_topdir {out}",
            "--define",
            f"ns_key {key}",
            "--define",
            f"ns_dbpath {dbpath}",
            str(SPEC),
        ]
    )
    (out / "done").touch()
    return sorted((out / "RPMS").rglob("*.rpm"))


def nc_rpms() -> tuple[list[Path], Path]:
    """The universe repo's nc-* RPMs, and nc-hello 2.0 (the second module stream)."""
    # its own copy: the shared universe repo may be rebuilt by another checkout meanwhile
    repo = build_repo(CACHE / "ncrepo")
    chosen = [repo.path / f"{repo.packages[name]}.rpm" for name in NC_PACKAGES]
    (hello2,) = repo.extra_path.glob("nc-hello-2.0-*.rpm")
    return chosen, hello2


def _nvras(rpms: Sequence[Path]) -> list[tuple[str, str]]:
    """(NAME, N-V-R.A) of each RPM, in order, from one rpm call."""
    out = _run(
        ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{NAME} %{NVRA}\n", *map(str, rpms)]
    )
    pairs = [tuple(line.split(" ", 1)) for line in out.splitlines() if line.strip()]
    if len(pairs) != len(rpms):
        raise RuntimeError(f"rpm -qp named {len(pairs)} of {len(rpms)} packages")
    return [(a, b) for a, b in pairs]


def sign(rpms: Sequence[Path], outdir: Path, home: Path) -> list[Path]:
    """Signed copies of `rpms` in outdir."""
    outdir.mkdir(parents=True, exist_ok=True)
    copies = []
    for rpm in rpms:
        target = outdir / rpm.name
        shutil.copyfile(rpm, target)
        copies.append(target)
    for start in range(0, len(copies), 60):
        _run(
            [
                "rpmsign",
                "--addsign",
                "--define",
                f"_gpg_name {KEY_NAME}",
                "--define",
                "__gpg /usr/bin/gpg",
                "--define",
                f"_gpg_path {home}",
                *map(str, copies[start : start + 60]),
            ]
        )
    return copies


def signed_copies(inputs: Sequence[Path], home: Path, key: Path) -> list[Path]:
    """Signed copies of `inputs`, cached by what they are copies of (signing takes a while)."""
    out = CACHE / f"signed-{_digest(sorted(map(str, inputs)), _file_digest(key), _FORMAT)}"
    if (out / "done").is_file():
        return [out / "rpms" / p.name for p in inputs]
    shutil.rmtree(out, ignore_errors=True)
    copies = sign(inputs, out / "rpms", home)
    (out / "done").touch()
    return copies


# -- metadata -----------------------------------------------------------------------------


def comps_xml() -> str:
    def reqs(kind: str, names: Sequence[str]) -> str:
        return "".join(f'      <packagereq type="{kind}">{n}</packagereq>\n' for n in names)

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">\n'
        "<comps>\n"
        "  <group>\n    <id>core</id>\n    <name>Core</name>\n"
        "    <description>Smallest possible installation</description>\n"
        "    <default>true</default>\n    <uservisible>false</uservisible>\n"
        "    <packagelist>\n"
        + reqs("mandatory", CORE_MANDATORY)
        + reqs("default", CORE_DEFAULT)
        + reqs("optional", CORE_OPTIONAL)
        + "    </packagelist>\n  </group>\n"
        "  <group>\n    <id>debugging</id>\n    <name>Debugging Tools</name>\n"
        "    <description>Tools for debugging misbehaving programs</description>\n"
        "    <default>false</default>\n    <uservisible>true</uservisible>\n"
        "    <packagelist>\n"
        + reqs("mandatory", ("strace",))
        + reqs("default", ("jq",))
        + "    </packagelist>\n  </group>\n</comps>\n"
    )


def modules_yaml(hello: dict[str, str]) -> str:
    """nc-hello as a module with streams 1 (default) and 2, as EL8 AppStream ships them."""
    docs = []
    for stream, nvra in sorted(hello.items()):
        evr = nvra.removeprefix("nc-hello-").rsplit(".", 1)[0]
        docs.append(
            "---\ndocument: modulemd\nversion: 2\ndata:\n"
            f'  name: nc-hello\n  stream: "{stream}"\n  version: 8060020230101{stream}\n'
            "  context: 9edba152\n  arch: x86_64\n"
            f"  summary: nc-hello {stream}\n  description: The hello program, stream {stream}.\n"
            "  license:\n    module: [MIT]\n"
            "  dependencies:\n  - buildrequires:\n      platform: [el8]\n    requires:\n      platform: [el8]\n"
            "  profiles:\n    common:\n      rpms: [nc-hello]\n"
            f"  artifacts:\n    rpms:\n    - nc-hello-0:{evr}.noarch\n...\n"
        )
    docs.append(
        "---\ndocument: modulemd-defaults\nversion: 1\ndata:\n"
        '  module: nc-hello\n  stream: "1"\n  profiles:\n    "1": [common]\n    "2": [common]\n...\n'
    )
    return "".join(docs)


def treeinfo(layout: str) -> str:
    if layout == "flat":  # EL7 style: no variants
        return (
            "[general]\nfamily = NewStart CGS Linux\nname = NewStart CGS Linux 5.05\n"
            f"version = 6.06\narch = x86_64\ntimestamp = {TIMESTAMP}\npackagedir = Packages\n"
        )
    variants = "".join(
        f"[variant-{v}]\nid = {v}\nname = {v}\npackages = {v}/Packages\n"
        f"repository = {v}\ntype = variant\nuid = {v}\n\n"
        for v in ("AppStream", "BaseOS")
    )
    return (
        "[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n"
        "[release]\nname = NewStart CGS Linux\nshort = NewStart\nversion = 6.06\n\n"
        f"[general]\nfamily = NewStart CGS Linux\nversion = 6.06\narch = x86_64\n"
        f"timestamp = {TIMESTAMP}\nvariant = BaseOS\npackagedir = BaseOS/Packages\n"
        "repository = BaseOS\n\n"
        f"[tree]\narch = x86_64\nbuild_timestamp = {TIMESTAMP}\nplatforms = x86_64\n"
        "variants = AppStream,BaseOS\n\n" + variants
    )


def _createrepo(repo: Path, comps: str | None = None, modules: str | None = None) -> None:
    argv = ["createrepo_c", "--quiet", "--no-database", "--revision", str(TIMESTAMP)]
    if comps:
        (repo.parent / f"{repo.name}-comps.xml").write_text(comps)
        argv += ["-g", str(repo.parent / f"{repo.name}-comps.xml")]
    _run([*argv, str(repo)])
    if modules:
        path = repo.parent / "modules.yaml"
        path.write_text(modules)
        _run(["modifyrepo_c", "--mdtype=modules", str(path), str(repo / "repodata")])


def master_iso(tree: Path, out: Path) -> None:
    tmp = out.with_suffix(".tmp")
    _run(
        [
            "xorriso",
            "-as",
            "mkisofs",
            "-quiet",
            "-R",
            "-J",
            "-V",
            VOLUME,
            "--modification-date=2023111012000000",
            "-o",
            str(tmp),
            str(tree),
        ]
    )
    tmp.rename(out)


def _damage(packages: Path, damage: str | None) -> None:
    """Spoil nc-owned for the bad-input tests: unsigned (repodata agrees) or corrupted."""
    if damage is None:
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


def lay_out(
    tree: Path, layout: str, signed: Sequence[Path], key: Path, damage: str | None = None
) -> dict[str, str]:
    """The DVD's directory tree; returns the package map of what is on it."""
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    appstream = appstream_names() | set(NC_PACKAGES) | {"nc-hello"}
    names: dict[str, str] = {}
    hello: dict[str, str] = {}
    placed: dict[str, list[Path]] = {"BaseOS": [], "AppStream": []}
    for rpm, (name, nvra) in zip(signed, _nvras(signed), strict=True):
        if name == "nc-hello":
            hello["2" if "-2.0-" in nvra else "1"] = nvra
        else:
            names[name] = nvra
        placed["AppStream" if name in appstream else "BaseOS"].append(rpm)
    names["nc-hello"] = hello["1"]
    shutil.copyfile(key, tree / "RPM-GPG-KEY-newstart")
    (tree / ".treeinfo").write_text(treeinfo(layout))
    (tree / ".discinfo").write_text(f"{TIMESTAMP}.000000\nNewStart CGS Linux 6.06\nx86_64\n")
    (tree / "media.repo").write_text(
        "[InstallMedia]\nname=NewStart CGS Linux 6.06\nmediaid=None\nmetadata_expire=-1\n"
        "gpgcheck=0\ncost=500\n"
    )
    if layout == "flat":
        packages = tree / "Packages"
        packages.mkdir()
        for rpm in signed:
            os.link(rpm, packages / rpm.name)
        # No modules in an EL7-style tree: nc-hello 2.0 stays out, 1.0 is the only one.
        (packages / f"{hello['2']}.rpm").unlink()
        if damage == "unsigned":
            _damage(packages, damage)
        _createrepo(tree, comps=comps_xml())
        if damage == "corrupt":
            _damage(packages, damage)
        return names
    for variant, rpms in placed.items():
        packages = tree / variant / "Packages"
        packages.mkdir(parents=True)
        for rpm in rpms:
            os.link(rpm, packages / rpm.name)
        if variant == "BaseOS":
            _createrepo(tree / variant, comps=comps_xml())
        else:
            _createrepo(tree / variant, modules=modules_yaml(hello))
    return names


def build_norepo_iso() -> Path:
    """A boot-only image: an ISO 9660 file system with no package repository on it."""
    out = CACHE / "newstart-boot-only.iso"
    with _lock("iso"):
        if not out.is_file():
            tree = CACHE / "work-boot-only"
            shutil.rmtree(tree, ignore_errors=True)
            (tree / "isolinux").mkdir(parents=True)
            (tree / "isolinux" / "README").write_text("boot files would be here\n")
            (tree / ".discinfo").write_text(f"{TIMESTAMP}.0\nNewStart CGS Linux 6.06\nx86_64\n")
            master_iso(tree, out)
            shutil.rmtree(tree)
    return out


def build_iso(
    layout: str = "treeinfo", dbpath: str = "/var/lib/rpm", damage: str | None = None
) -> Iso:
    """The universe's NewStart DVD ISO for `layout` and the distribution's rpm `dbpath`.

    damage: None, "unsigned" (nc-owned without a signature, consistent repodata) or
    "corrupt" (nc-owned's bytes changed after the repodata was written); flat layout only.
    """
    if damage is not None and layout != "flat":
        raise ValueError("damaged ISOs use the flat layout")
    with _lock("iso"):
        home, key = signing_key()
        inputs = [*debian_rpms(), *base_rpms(dbpath, key)]
        ncs, hello2 = nc_rpms()
        inputs += [*ncs, hello2]
        tag = _digest(
            layout,
            dbpath,
            damage,
            sorted(str(p) for p in inputs),  # cache directories are content-keyed
            _file_digest(key),
            _file_digest(Path(__file__)),
            _FORMAT,
        )
        out = CACHE / f"newstart-{layout}{'-' + damage if damage else ''}-{tag}.iso"
        meta = out.with_suffix(".json")
        if out.is_file() and meta.is_file():
            data = json.loads(meta.read_text())
            return Iso(out, layout, dbpath, key, data["packages"], data["modular"])
        work = CACHE / f"work-{tag}"
        shutil.rmtree(work, ignore_errors=True)
        signed = signed_copies(inputs, home, key)
        names = lay_out(work / "tree", layout, signed, key, damage)
        master_iso(work / "tree", out)
        modular = {} if layout == "flat" else {"nc-hello": names["nc-hello"]}
        meta.write_text(json.dumps({"packages": names, "modular": modular}, indent=1))
        shutil.rmtree(work)
        return Iso(out, layout, dbpath, key, names, modular)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.universe.iso.build")
    parser.add_argument("--layout", choices=("treeinfo", "flat"), default="treeinfo")
    parser.add_argument("--dbpath", default="/var/lib/rpm")
    parser.add_argument("--damage", choices=("unsigned", "corrupt"))
    args = parser.parse_args(argv)
    iso = build_iso(args.layout, args.dbpath, args.damage)
    print(f"{iso.path} ({iso.path.stat().st_size / 1e6:.0f} MB, {len(iso.packages)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
