"""DVD-like NewStart ISOs for the test universe, built with xorriso from real RPMs.

What goes on them: the Debian userland repackaged by debian.py (bash, coreutils,
rpm, dnf, systemd, strace, jq ... with their docs, man pages and translations),
the NewStart system packages of specs/newstart-base.spec, and the universe's
nc-* packages (nc-hello 1.0 and 2.0 as two streams of a module). Every RPM is
signed with the universe's key, whose public half is on the ISO as
RPM-GPG-KEY-newstart.

Profiles (profiles.py): ``bookworm`` (the host's Debian, rpm 4.18 writing
sqlite) and ``el8`` (Debian bullseye's rpm 4.16 writing BerkeleyDB under
/var/lib/rpm, with a real NewStart V6 package's header facts and RSA/SHA1
signatures).

Layouts:
* ``treeinfo`` (EL8): .treeinfo with BaseOS and AppStream variants, comps in
  BaseOS, modular metadata (modules.yaml, with defaults) in AppStream;
* ``flat`` (EL7): one repository at the root (Packages/, repodata/), an old
  .treeinfo without variants.

Everything is cached under CACHE/iso, keyed by the content of its inputs.

    python -m tests.universe.iso.build [--profile bookworm|el8] [--layout treeinfo|flat]
        [--dbpath PATH] [--damage unsigned|corrupt|hostile-rpm]
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

from ..rpmrepo import SPECS_DIR, build_repo
from . import debian
from .aptsuite import AptSuite, other_suite
from .damage import BEFORE_METADATA, DAMAGES, outsider_key, spoil
from .metadata import TIMESTAMP, comps_xml, createrepo, modules_yaml, treeinfo
from .profiles import BOOKWORM, PROFILES, Profile

HERE = Path(__file__).resolve().parent
SPEC = HERE / "specs" / "newstart-base.spec"
CACHE = Path(os.environ.get("NC_UNIVERSE_CACHE", "/var/tmp/nestcustom-universe")) / "iso"
KEY_NAME = "NewStart Universe Signing Key <security@newstart.example>"
VOLUME = "NewStart-CGS-6.06-x86_64"
_FORMAT = "4"  # bump when the way ISOs are made changes

#: The universe's nc-* packages on the ISO (AppStream in the treeinfo layout).
NC_PACKAGES = ("nc-libgreet", "nc-hello", "nc-scriptlet", "nc-optapp")


@dataclass(frozen=True)
class Iso:
    path: Path
    layout: str
    dbpath: str
    profile: str  # bookworm or el8 (profiles.py)
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


def apt_suite(profile: Profile) -> AptSuite:
    """apt for the profile's Debian release (the host's own needs no options)."""
    if not profile.codename:
        return AptSuite("bookworm")
    return other_suite(profile.codename, CACHE / f"apt-{profile.codename}")


def debian_rpms(profile: Profile) -> list[Path]:
    """The repackaged Debian userland (cached by package versions and the repack code)."""
    suite = apt_suite(profile)
    roots = (*debian.BASEOS_ROOTS, *debian.APPSTREAM_ROOTS)
    debs = debian.package_set(roots, suite)
    key = _digest(
        sorted((d.name, d.version) for d in debs.values()),
        _file_digest(Path(debian.__file__)),
        profile.rpm_defines(),
        _FORMAT,
    )
    out = CACHE / f"debian-{profile.name}-{key}"
    stamp = out / "rpms.json"
    if stamp.is_file():
        return [out / name for name in json.loads(stamp.read_text())]
    shutil.rmtree(out, ignore_errors=True)
    rpms = debian.repack(debs, out / "work", suite, profile.rpm_defines())
    (out / "rpms").mkdir()
    kept = []
    for rpm in rpms:
        shutil.move(str(rpm), out / "rpms" / rpm.name)
        kept.append(f"rpms/{rpm.name}")
    shutil.rmtree(out / "work")
    stamp.write_text(json.dumps(sorted(kept)))
    return [out / name for name in sorted(kept)]


def appstream_names(profile: Profile) -> set[str]:
    """Debian packages only the AppStream tools need (the rest is BaseOS)."""
    suite = apt_suite(profile)
    base = set(debian.apt_choice(debian.BASEOS_ROOTS, suite))
    every = set(debian.apt_choice((*debian.BASEOS_ROOTS, *debian.APPSTREAM_ROOTS), suite))
    return every - base


def _rpmbuild(spec: Path, topdir: Path, defines: dict[str, str]) -> None:
    argv = ["rpmbuild", "-bb", "--define", f"_topdir {topdir}"]
    for name, value in defines.items():
        argv += ["--define", f"{name} {value}"]
    _run([*argv, str(spec)])


def base_rpms(dbpath: str, key: Path, profile: Profile) -> list[Path]:
    """filesystem, setup, newstart-release, newstart-rpm-config, nc-owned for `dbpath`."""
    defines = {"ns_key": str(key), "ns_dbpath": dbpath, **profile.rpm_defines()}
    tag = _digest(SPEC.read_text(), defines, _file_digest(key), _FORMAT)
    out = CACHE / f"base-{tag}"
    if (out / "done").is_file():
        return sorted((out / "RPMS").rglob("*.rpm"))
    shutil.rmtree(out, ignore_errors=True)
    _rpmbuild(SPEC, out, defines)
    (out / "done").touch()
    return sorted((out / "RPMS").rglob("*.rpm"))


def nc_rpms(profile: Profile) -> tuple[list[Path], Path]:
    """The universe repo's nc-* RPMs, and nc-hello 2.0 (the second module stream)."""
    if profile is not BOOKWORM:  # the same specs, built with the distribution's facts
        return _nc_rpms_for(profile)
    # its own copy: the shared universe repo may be rebuilt by another checkout meanwhile
    repo = build_repo(CACHE / "ncrepo")
    chosen = [repo.path / f"{repo.packages[name]}.rpm" for name in NC_PACKAGES]
    (hello2,) = repo.extra_path.glob("nc-hello-2.0-*.rpm")
    return chosen, hello2


def _nc_rpms_for(profile: Profile) -> tuple[list[Path], Path]:
    specs = [SPECS_DIR / f"{name}.spec" for name in NC_PACKAGES]
    defines = {
        **profile.rpm_defines(),
        "__os_install_post": "%{nil}",
        "debug_package": "%{nil}",
        "_build_id_links": "none",
    }
    tag = _digest([s.read_text() for s in specs], defines, _FORMAT)
    out = CACHE / f"nc-{profile.name}-{tag}"
    if not (out / "done").is_file():
        shutil.rmtree(out, ignore_errors=True)
        for spec in specs:
            _rpmbuild(spec, out / "one", defines)
        _rpmbuild(
            specs[NC_PACKAGES.index("nc-hello")], out / "two", {**defines, "nc_version": "2.0"}
        )
        (out / "done").touch()
    chosen = sorted((out / "one" / "RPMS").rglob("*.rpm"))
    (hello2,) = (out / "two" / "RPMS").rglob("nc-hello-2.0-*.rpm")
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


def sign(rpms: Sequence[Path], outdir: Path, home: Path, digest: str) -> list[Path]:
    """Signed copies of `rpms` in outdir; `digest` is the signature's hash (sha256, sha1)."""
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
                "--define",
                f"_gpg_digest_algo {digest}",
                *map(str, copies[start : start + 60]),
            ]
        )
    return copies


def signed_copies(inputs: Sequence[Path], home: Path, key: Path, digest: str) -> list[Path]:
    """Signed copies of `inputs`, cached by what they are copies of (signing takes a while)."""
    tag = _digest(sorted(map(str, inputs)), _file_digest(key), digest, _FORMAT)
    out = CACHE / f"signed-{tag}"
    if (out / "done").is_file():
        return [out / "rpms" / p.name for p in inputs]
    shutil.rmtree(out, ignore_errors=True)
    copies = sign(inputs, out / "rpms", home, digest)
    (out / "done").touch()
    return copies


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


def lay_out(
    tree: Path,
    layout: str,
    signed: Sequence[Path],
    key: Path,
    profile: Profile,
    damage: str | None = None,
) -> dict[str, str]:
    """The DVD's directory tree; returns the package map of what is on it."""
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    appstream = appstream_names(profile) | set(NC_PACKAGES) | {"nc-hello"}
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
        if damage in BEFORE_METADATA:
            spoil(packages, damage, outsider_key(CACHE / "gnupg-outsider"))
        createrepo(tree, comps=comps_xml())
        if damage and damage not in BEFORE_METADATA:
            spoil(packages, damage, outsider_key(CACHE / "gnupg-outsider"))
        return names
    for variant, rpms in placed.items():
        packages = tree / variant / "Packages"
        packages.mkdir(parents=True)
        for rpm in rpms:
            os.link(rpm, packages / rpm.name)
        if variant == "BaseOS":
            createrepo(tree / variant, comps=comps_xml())
        else:
            createrepo(tree / variant, modules=modules_yaml(hello))
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
    layout: str = "treeinfo",
    dbpath: str = "/var/lib/rpm",
    damage: str | None = None,
    profile: str = "bookworm",
) -> Iso:
    """The universe's NewStart DVD ISO for `layout` and the distribution's rpm `dbpath`.

    damage: None or one of damage.DAMAGES (flat layout only); profile: profiles.PROFILES.
    """
    if damage is not None and layout != "flat":
        raise ValueError("damaged ISOs use the flat layout")
    chosen = PROFILES[profile]
    with _lock("iso"):
        home, key = signing_key()
        inputs = [*debian_rpms(chosen), *base_rpms(dbpath, key, chosen)]
        ncs, hello2 = nc_rpms(chosen)
        inputs += [*ncs, hello2]
        tag = _digest(
            layout,
            dbpath,
            damage,
            chosen,
            sorted(str(p) for p in inputs),  # cache directories are content-keyed
            _file_digest(key),
            _file_digest(Path(__file__)),
            _file_digest(HERE / "damage.py"),
            _FORMAT,
        )
        kind = "" if chosen is BOOKWORM else f"{chosen.name}-"
        out = CACHE / f"newstart-{kind}{layout}{'-' + damage if damage else ''}-{tag}.iso"
        meta = out.with_suffix(".json")
        if out.is_file() and meta.is_file():
            data = json.loads(meta.read_text())
            return Iso(out, layout, dbpath, profile, key, data["packages"], data["modular"])
        work = CACHE / f"work-{tag}"
        shutil.rmtree(work, ignore_errors=True)
        signed = signed_copies(inputs, home, key, chosen.digest)
        names = lay_out(work / "tree", layout, signed, key, chosen, damage)
        master_iso(work / "tree", out)
        modular = {} if layout == "flat" else {"nc-hello": names["nc-hello"]}
        meta.write_text(json.dumps({"packages": names, "modular": modular}, indent=1))
        shutil.rmtree(work)
        return Iso(out, layout, dbpath, profile, key, names, modular)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.universe.iso.build")
    parser.add_argument("--layout", choices=("treeinfo", "flat"), default="treeinfo")
    parser.add_argument("--dbpath", default="/var/lib/rpm")
    parser.add_argument("--damage", choices=DAMAGES)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="bookworm")
    args = parser.parse_args(argv)
    iso = build_iso(args.layout, args.dbpath, args.damage, args.profile)
    print(f"{iso.path} ({iso.path.stat().st_size / 1e6:.0f} MB, {len(iso.packages)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
