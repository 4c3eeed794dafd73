#!/usr/libexec/nestcustom-emu/python3
"""Test-universe emulator of `rpm-ostree` on a booted NestOS host (contract section 2).

Deployments live in /var/lib/nestcustom-emu/deployments.json, newest first, in
the shape `status --json` prints. `rebase` really fetches the image manifest
and config from the registry with skopeo. Reboots are finalised by `boot`,
which the init script runs at every (re)start of the host container. Faults
are files under /etc/nestcustom-emu/faults/ written by the test harness.

The host's rpm-ostree version is in /etc/nestcustom-emu/version (written at
the first boot from the container's NC_RPM_OSTREE): 2022.16 behaves as NestOS
22.03 SP2 and later, 2022.8 as SP1 (a container rebase needs --experimental,
no ostree.bootable check, `version` not taken from the image label).

Signed images (contract section 4): `ostree-image-signed:` refuses a policy
whose default accepts anything (ostree-ext), and then hands the fetch to
skopeo's image proxy, which checks policy.json only from skopeo 1.13. The
skopeo version the host reports is in /etc/nestcustom-emu/skopeo-version
(from NC_SKOPEO_VERSION; Debian's 1.9.3 underneath either way): from 1.13 the
fetch really goes through containers/image's policy check (`skopeo copy
--policy` into the host's layer store), before it, none. A staged image's
trust files (policy.json, registries.d, /etc/pki/containers) are read from
its layers above the host's origin and put in /etc when it boots, as ostree
gives a deployment its image's /etc.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, "/usr/libexec/nestcustom-emu")
sys.path.insert(0, "/usr/lib/nestcustom-emu")
import imagefiles  # type: ignore[import-not-found]  # beside it on the host
import layers  # type: ignore[import-not-found]
import trustfiles  # type: ignore[import-not-found]
from kargs_host import KargsError, image_kargsd, patch  # type: ignore[import-not-found]

STATE = Path("/var/lib/nestcustom-emu/deployments.json")
POLICY = Path("/etc/containers/policy.json")
SKOPEO_VERSION = Path("/etc/nestcustom-emu/skopeo-version")
FAULTS = Path("/etc/nestcustom-emu/faults")
REGISTRIES_D = Path("/etc/containers/registries.conf.d")
AUTH = Path("/etc/ostree/auth.json")
VERSION_FILE = Path("/etc/nestcustom-emu/version")
OS_VERSIONS = {"2022.8": "22.03-LTS-SP1.20230301.0", "2022.16": "22.03-LTS-SP2.20230922.0"}
ORIGIN = "openEuler:openEuler/x86_64/nestos/stable"
TRANSPORTS = ("registry", "docker", "oci", "oci-archive", "containers-storage")  # dir: refused
NOT_BOOTED_HINT = 'Changes queued for next boot. Run "systemctl reboot" to start a reboot'
CMDLINE = Path("/run/nestcustom-cmdline")  # bind-mounted on /proc/cmdline by nc-init
KARGS_D = Path("/usr/lib/bootc/kargs.d")
# libostree's lock on a staged deployment (src/libostree/ostree-sysroot-private.h); /run
# does not survive a real reboot, so the boot hook removes it.
STAGED_LOCKED = Path("/run/ostree/staged-deployment-locked")


def default_kargs(csum: str) -> list[str]:
    """A NestOS host's arguments after installation (ostree= names the deployment)."""
    return [
        "mitigations=auto,nosmt",
        "console=tty0",
        "console=ttyS0,115200n8",
        "ignition.platform.id=qemu",
        f"ostree=/ostree/boot.1/nestos/{csum}/0",
        "root=UUID=2d3e5a1c-6f1b-4a44-9b2f-2a5c0e7d1f10",
        "rw",
        "rootflags=prjquota",
        "quiet",
    ]


def with_ostree(kargs: list[str], csum: str, serial: int) -> list[str]:
    """The arguments of another deployment: its own ostree= (set by ostree, not by users)."""
    return [
        a if not a.startswith("ostree=") else f"ostree=/ostree/boot.1/nestos/{csum}/{serial}"
        for a in kargs
    ]


class Fail(Exception):
    pass


def fault(name: str) -> str | None:
    path = FAULTS / name
    return path.read_text().strip() if path.exists() else None


def rpm_ostree_version() -> str:
    return VERSION_FILE.read_text().strip() if VERSION_FILE.exists() else "2022.16"


def sp1() -> bool:
    return rpm_ostree_version() == "2022.8"


def checksum(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def deployment(
    csum: str,
    *,
    booted: bool,
    staged: bool,
    version: str | None,
    ref: str | None = None,
    digest: str | None = None,
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": f"nestos-{csum}.0",
        "osname": "nestos",
        "checksum": csum,
        "serial": 0,
        "booted": booted,
        "staged": staged,
        "pinned": False,
        "unlocked": "none",
        "timestamp": int(time.time()),
        "requested-packages": [],
        "requested-local-packages": [],
        "requested-base-removals": [],
        "packages": [],
        "base-removals": [],
        "base-commit-meta": {"version": version} if version else {},
    }
    if version is not None:  # absent, not "unknown", when the image has no version label
        d["version"] = version
    if ref:
        d["container-image-reference"] = ref
        d["container-image-reference-digest"] = digest
    else:
        d["origin"] = ORIGIN
    # Kept by the emulator, never printed (status --json has no such fields): the
    # deployment's boot arguments and its /usr/lib/bootc/kargs.d.
    d["_kargs"] = default_kargs(csum)
    d["_kargsd"] = {}
    return d


def public(d: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in d.items() if not k.startswith("_")}
    # rpm-ostree 2022.8/2022.16 rust/src/daemon.rs: a staged deployment while the lock exists.
    if d["staged"] and STAGED_LOCKED.exists():
        shown["finalization-locked"] = True
    return shown


def merge_deployment(deployments: list[dict[str, Any]]) -> dict[str, Any]:
    """rpm-ostree's origin merge deployment: the first one, the staged if any."""
    return next((d for d in deployments if d["staged"]), None) or next(
        d for d in deployments if d["booted"]
    )


def load() -> list[dict[str, Any]]:
    if not STATE.exists():
        STATE.parent.mkdir(parents=True, exist_ok=True)
        version = OS_VERSIONS.get(rpm_ostree_version(), OS_VERSIONS["2022.16"])
        save([deployment(checksum("base"), booted=True, staged=False, version=version)])
    return list(json.loads(STATE.read_text()))


def save(deployments: list[dict[str, Any]]) -> None:
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(deployments, indent=1))
    os.replace(tmp, STATE)


def driver() -> dict[str, str] | None:
    """Zincati registered as the update driver (fault `zincati`: its unit state, 1 = active)."""
    if fault("zincati"):
        return {"driver-name": "Zincati", "driver-sd-unit": "zincati.service"}
    return None


def driver_blocks(args: list[str]) -> bool:
    """rebase/upgrade/deploy refuse while the driver's unit is active, activating or failed."""
    state = fault("zincati")
    if not state or state == "inactive" or "--bypass-driver" in args:
        return False
    print("error: Updates and deployments are driven by Zincati (zincati.service)", file=sys.stderr)
    print("See Zincati's documentation or use --bypass-driver", file=sys.stderr)
    return True


def transaction() -> list[str] | None:
    if fault("transaction"):
        return ["rebase", "client(id:cli)", "/org/projectatomic/rpmostree1/nestos"]
    return None


def status(args: list[str]) -> int:
    deployments = load()
    if "--booted" in args:
        deployments = [d for d in deployments if d["booted"]]
    if "--json" in args:
        print(
            json.dumps(
                {
                    "deployments": [public(d) for d in deployments],
                    "transaction": transaction(),
                    "cached-update": None,
                    "update-driver": driver(),
                },
                indent=2,
            )
        )
        return 0
    print("State: " + ("busy" if fault("transaction") else "idle"))
    print("Deployments:")
    for d in deployments:
        mark = "*" if d["booted"] else " "
        source = d.get("container-image-reference") or d.get("origin")
        print(
            f"{mark} {source}\n    Version: {d.get('version', '')}"
            + (" (staged)" if d["staged"] else "")
        )
        if d.get("container-image-reference-digest"):
            print(f"    Digest: {d['container-image-reference-digest']}")
    return 0


def parse_ref(ref: str) -> tuple[str, str]:
    """(transport, image) of an ostree container reference, with rpm-ostree's errors."""
    if ref.startswith("ostree-unverified-registry:"):
        return "registry", ref.split(":", 1)[1]
    for scheme in ("ostree-unverified-image:", "ostree-image-signed:", "ostree-remote-image:"):
        if ref.startswith(scheme):
            rest = ref[len(scheme) :]
            if scheme == "ostree-remote-image:":
                rest = rest.split(":", 1)[1] if ":" in rest else ""
            transport, _, image = rest.partition(":")
            if transport not in TRANSPORTS:
                raise Fail(f"Unknown transport '{transport}'")
            if scheme == "ostree-image-signed:":
                _check_policy_usable()
            return transport, image.removeprefix("//")
    raise Fail(f"Invalid ostree image reference scheme: {ref.split(':', 1)[0]}")


def _check_policy_usable() -> None:
    """ostree-ext 0.9.1: a missing policy is an I/O error; a default of exactly one
    insecureAcceptAnything is refused (container_policy_is_default_insecure)."""
    try:
        policy = json.loads(POLICY.read_text())
    except FileNotFoundError as exc:
        raise Fail(f"{POLICY}: No such file or directory (os error 2)") from exc
    except ValueError as exc:
        raise Fail(f"{POLICY}: {exc}") from exc
    default = [r.get("type") for r in policy.get("default") or []]
    if default == ["insecureAcceptAnything"]:
        raise Fail(
            "containers-policy.json specifies a default of `insecureAcceptAnything`; refusing usage"
        )


def skopeo_version() -> tuple[int, int]:
    text = SKOPEO_VERSION.read_text() if SKOPEO_VERSION.exists() else "1.9.3"
    major, minor = ([*re.findall(r"\d+", text), "0", "0"])[:2]
    return int(major), int(minor)


def proxy_checks_policy(image: str) -> None:
    """skopeo >= 1.13's image proxy: containers/image's policy check, for real (a copy into
    the host's layer store, which keeps the layers as ostree would)."""
    argv = [
        "skopeo",
        "--policy",
        str(POLICY),
        "copy",
        "--quiet",
        "--remove-signatures",  # checked by the policy first; an OCI layout keeps none
        f"--src-tls-verify={'false' if _insecure(image) else 'true'}",
    ]
    if AUTH.exists():
        argv.append(f"--src-authfile={AUTH}")
    store = Path("/var/lib/nestcustom-emu/layers")
    store.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [*argv, f"docker://{image}", f"oci:{store}:pulled"], capture_output=True, check=False
    )
    if done.returncode:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        message = re.sub(r'^time="[^"]*" level=fatal msg="?|"$', "", lines[-1] if lines else "")
        raise Fail(message.replace('\\"', '"') or "skopeo copy failed")


def _insecure(image: str) -> bool:
    host = image.split("/", 1)[0]
    for conf in sorted(REGISTRIES_D.glob("*.conf")) if REGISTRIES_D.is_dir() else []:
        text = conf.read_text()
        for block in text.split("[[registry]]"):
            if re.search(rf'location\s*=\s*"{re.escape(host)}"', block) and re.search(
                r"insecure\s*=\s*true", block
            ):
                return True
    return False


def skopeo(image: str, *extra: str) -> bytes:
    argv = [
        "skopeo",
        "inspect",
        "--raw",
        *extra,
        f"--tls-verify={'false' if _insecure(image) else 'true'}",
    ]
    if AUTH.exists():
        argv += ["--authfile", str(AUTH)]
    done = subprocess.run([*argv, f"docker://{image}"], capture_output=True, check=False)
    if done.returncode:
        text = done.stderr.decode(errors="replace").strip().splitlines()
        message = text[-1] if text else "skopeo failed"
        message = re.sub(r'^time="[^"]*" level=fatal msg="?|"$', "", message).replace('\\"', '"')
        raise Fail(message)
    return done.stdout


def rebase(args: list[str]) -> int:
    refs = [a for a in args if not a.startswith("-")]
    if len(refs) != 1:
        raise Fail("Exactly one REFSPEC is required")
    ref = refs[0]
    if fault("transaction"):
        raise Fail(
            "Transaction in progress: rebase\n You can cancel the current transaction with `rpm-ostree cancel`"
        )
    if driver_blocks(args):
        return 1
    deployments = load()
    # Compared with the first deployment: the staged one if any, else the booted one.
    first = next((d for d in deployments if d["staged"]), None) or next(
        d for d in deployments if d["booted"]
    )
    if first.get("container-image-reference") == ref:
        raise Fail(f"Old and new refs are equal: {ref}")
    if ref.startswith("ostree-") and sp1() and "--experimental" not in args:
        raise Fail("This feature is experimental and subject to change; use --experimental")
    if message := fault("rebase-fails"):
        raise Fail(message)
    if delay := fault("rebase-slow"):
        time.sleep(float(delay))
    _, image = parse_ref(ref)
    print(f"Pulling manifest: {ref}")
    if ref.startswith("ostree-image-signed:") and skopeo_version() >= (1, 13):
        proxy_checks_policy(image)
    manifest = skopeo(image)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    config = json.loads(skopeo(image, "--config"))
    labels = (config.get("config") or {}).get("Labels") or {}
    if "ostree.bootable" not in labels and not sp1():  # presence only; 0.7.1 does not check
        raise Fail(
            "Preparing import: Fetching manifest: Target image does not have ostree.bootable label"
        )
    print(f"Importing: {ref} (digest: {digest})")
    staged = deployment(
        checksum(digest),
        booted=False,
        staged=True,
        version=None if sp1() else labels.get("version"),
        ref=ref,
        digest=digest,
    )
    import_image(staged, image, manifest, config)
    print("Staging deployment... done")
    # A new deployment keeps the arguments of the one it is made from (rpm-ostree's
    # upgrader ports them from the origin merge deployment: rpmostree-sysroot-upgrader.cxx).
    staged["_kargs"] = with_ostree(merge_deployment(deployments)["_kargs"], staged["checksum"], 0)
    lock_finalization(args)
    kept = [staged, *(d for d in deployments if not d["staged"])]
    save(kept)
    if not sp1():
        # 2022.16 purges the old image after a rebase, then every layer no deployment
        # uses (purge_refspec, gc_image_layers); 2022.8 keeps every layer it fetched.
        layers.prune({digest for d in kept for digest in d.get("_layers", [])})
    print("Upgraded:\n  (container image)")
    print(NOT_BOOTED_HINT)
    if "-r" in args or "--reboot" in args:
        reboot()
    return 0


def import_image(
    staged: dict[str, Any], image: str, manifest_bytes: bytes, config: dict[str, Any]
) -> None:
    """Fetch the layers the host lacks (contract section 6), then read from the image what
    the emulator keeps of a deployment: its kargs.d, trust files and unit files."""
    manifest = json.loads(manifest_bytes)
    try:
        layers.pull(image, manifest, config, _insecure(image), AUTH)
        staged["_kargsd"] = image_kargsd(image, manifest_bytes, _insecure(image), AUTH)
    except (KargsError, layers.LayerError, OSError, ValueError) as exc:
        raise Fail(f"Importing: {exc}") from exc
    staged["_layers"] = [str(layer["digest"]) for layer in manifest.get("layers") or []]
    trustfiles.stage(staged["checksum"], image, manifest, _insecure(image), AUTH)
    imagefiles.stage(staged["checksum"], image, manifest, _insecure(image), AUTH)


def upgrade(args: list[str]) -> int:
    if fault("transaction"):
        raise Fail("Transaction in progress: rebase")
    if driver_blocks(args):
        return 1
    deployments = load()
    booted = next(d for d in deployments if d["booted"])
    ref = booted.get("container-image-reference")
    if not ref:
        raise Fail("This emulator only upgrades container deployments")
    _, image = parse_ref(ref)
    digest = "sha256:" + hashlib.sha256(skopeo(image)).hexdigest()
    if digest == booted.get("container-image-reference-digest"):  # ostree-ext: AlreadyPresent
        print("No upgrade available.")
        return 77 if "--unchanged-exit-77" in args else 0
    manifest = skopeo(image)
    config = json.loads(skopeo(image, "--config"))
    version = ((config.get("config") or {}).get("Labels") or {}).get("version")
    staged = deployment(
        checksum(digest), booted=False, staged=True, version=version, ref=ref, digest=digest
    )
    import_image(staged, image, manifest, config)
    staged["_kargs"] = with_ostree(merge_deployment(deployments)["_kargs"], staged["checksum"], 0)
    lock_finalization(args)
    save([staged, *(d for d in deployments if not d["staged"])])
    print("Staging deployment... done")
    print(NOT_BOOTED_HINT)
    return 0


def rollback(args: list[str]) -> int:
    if any(d["staged"] for d in load()):
        # rpm-ostree does not quietly discard a staged deployment (contract section 2).
        raise Fail('A staged deployment exists; drop it first with "rpm-ostree cleanup -p"')
    deployments = [d for d in load() if not d["staged"]]
    if len(deployments) < 2:
        raise Fail("No rollback deployment found")
    booted_index = next(i for i, d in enumerate(deployments) if d["booted"])
    other = 1 if booted_index == 0 else 0
    deployments.insert(0, deployments.pop(other))
    save(deployments)
    print("Moving '{}' to be first deployment".format(deployments[0]["checksum"]))
    print(NOT_BOOTED_HINT)
    if "-r" in args or "--reboot" in args:
        reboot()
    return 0


def lock_finalization(args: list[str]) -> None:
    """--lock-finalization: the lock file is made before staging (rpm-ostree 2022.16
    src/daemon/rpmostree-sysroot-upgrader.cxx); without it an existing lock is left."""
    if "--lock-finalization" in args:
        STAGED_LOCKED.parent.mkdir(parents=True, exist_ok=True)
        STAGED_LOCKED.touch()


def finalize_deployment(args: list[str]) -> int:
    """`rpm-ostree finalize-deployment` (2022.8 and 2022.16
    src/app/rpmostree-builtin-finalize-deployment.cxx, rpmostreed-transaction-types.cxx
    finalize_deployment_transaction_execute): unlock the staged deployment, then reboot."""
    known = {"--allow-missing-checksum", "--allow-unlocked"}
    values, i = [], 0
    while i < len(args):
        if args[i] == "--os":
            i += 1
        elif args[i].startswith("--os="):
            pass
        elif args[i].startswith("-"):
            if args[i] not in known:
                raise Fail(f"Unknown option {args[i]}")
        else:
            values.append(args[i])
        i += 1
    allow_missing = "--allow-missing-checksum" in args
    if len(values) > 1:
        raise Fail("Too many arguments passed")
    if not values and not allow_missing:
        raise Fail("Must provide expected CHECKSUM or --allow-missing-checksum")
    if values and allow_missing:
        raise Fail("Cannot specify both CHECKSUM and --allow-missing-checksum")
    first = load()[0]
    if not first["staged"]:
        raise Fail("No pending staged deployment found")
    # The base commit: the deployment's own checksum, as nothing is layered on a host here.
    if values and values[0] != first["checksum"]:
        raise Fail(f"Expected staged base checksum {values[0]}, but found {first['checksum']}")
    if STAGED_LOCKED.exists():
        STAGED_LOCKED.unlink()
    elif "--allow-unlocked" not in args:
        raise Fail("Staged deployment already unlocked")
    print(f"Finalized deployment; rebooting into {first['checksum']}", file=sys.stderr)
    reboot()
    return 0


def cleanup(args: list[str]) -> int:
    if "-p" in args or "--pending" in args:
        save([d for d in load() if not d["staged"]])
        # libostree drops the staged deployment's lock with it (ostree-sysroot-deploy.c).
        STAGED_LOCKED.unlink(missing_ok=True)
    elif "-r" in args or "--rollback" in args:
        save([d for d in load() if d["booted"] or d["staged"]])
    return 0


def boot() -> int:
    """At every boot: finalise the staged deployment (unless a fault keeps the old one)."""
    deployments = load()
    staged = [d for d in deployments if d["staged"]]
    rest = [d for d in deployments if not d["staged"]]
    if staged and STAGED_LOCKED.exists():
        # ostree-finalize-staged at shutdown (libostree v2022.7 ostree-sysroot-deploy.c): a
        # locked deployment is not written; it lived in /run, so it is gone after the boot.
        print(f"ostree-finalize-staged: Not finalizing; found {STAGED_LOCKED}", flush=True)
        staged = []
    STAGED_LOCKED.unlink(missing_ok=True)
    if staged and not fault("boots-old"):
        staged[0]["staged"] = False
        rest.insert(0, staged[0])
        was = previous_booted(rest)
        if fault("boot-drops-kargs") and was is not None:
            # A boot entry written without the new options: the old arguments come back.
            staged[0]["_kargs"] = with_ostree(
                was["_kargs"], staged[0]["checksum"], staged[0]["serial"]
            )
    previous = next((d for d in rest if d["booted"]), None)
    for d in rest:
        d["booted"] = False
    rest[0]["booted"] = True
    kept = [rest[0]] + (
        [previous] if previous is not None and previous is not rest[0] else [d for d in rest[1:2]]
    )
    save(kept)
    trustfiles.boot(rest[0]["checksum"])
    imagefiles.boot(rest[0]["checksum"])
    booted = kept[0]
    kver = "5.10.0-182.0.0.95.oe2203sp2.x86_64"
    CMDLINE.write_text(
        f"BOOT_IMAGE=(hd0,gpt3)/ostree/nestos-{booted['checksum']}/vmlinuz-{kver} "
        + " ".join(booted.get("_kargs", []))
        + "\n"
    )
    # The booted image's /usr: its kargs.d, as the image has it.
    KARGS_D.mkdir(parents=True, exist_ok=True)
    for stale in KARGS_D.iterdir():
        stale.unlink()
    for name, text in booted.get("_kargsd", {}).items():
        (KARGS_D / name).write_text(text)
    return 0


KARGS_VALUED = {
    "--append", "--replace", "--delete", "--append-if-missing", "--delete-if-present",
    "--os", "--deploy-index",
}  # fmt: skip
KARGS_FLAGS = {
    "--reboot",
    "--unchanged-exit-77",
    "--import-proc-cmdline",
    "--editor",
    "--lock-finalization",
}


def kargs(args: list[str]) -> int:
    """`rpm-ostree kargs`: show or change the pending deployment's arguments (2022.8 and
    2022.16 src/app/rpmostree-builtin-kargs.cxx); a change is a new staged deployment of
    the same commit (the upgrader's SYNTHETIC_PULL), replacing a staged one."""
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        key, eq, value = args[i].partition("=")
        if key in KARGS_VALUED:
            if not eq:
                i += 1
                if i >= len(args):
                    raise Fail(f"Missing argument for {key}")
                value = args[i]
            opts.setdefault(key, []).append(value)
        elif key in KARGS_FLAGS and not eq:
            opts.setdefault(key, []).append("")
        else:
            raise Fail(f"Unknown option {args[i]}")
        i += 1
    changes = [k for k in opts if k in KARGS_VALUED - {"--os", "--deploy-index"}]
    if "--editor" in opts:
        raise Fail("This emulator has no editor")
    if "--delete" in opts and "--replace" in opts:
        raise Fail("Cannot specify both --delete and --replace")
    if "--import-proc-cmdline" in opts and "--deploy-index" in opts:
        raise Fail("Cannot specify both --import-from-proc-cmdline and --deploy-index")
    if "--reboot" in opts and not changes:
        raise Fail("Cannot reboot when kernel arguments not changed")
    deployments = load()
    if "--deploy-index" in opts:
        base = deployments[int(opts["--deploy-index"][-1])]
    elif "--import-proc-cmdline" in opts:
        base = next(d for d in deployments if d["booted"])
    else:
        base = merge_deployment(deployments)
    if not changes:
        print(" ".join(base["_kargs"]))
        return 0
    if fault("transaction"):
        raise Fail("Transaction in progress: rebase")
    try:
        new, changed = patch(base["_kargs"], opts)
    except KargsError as exc:
        raise Fail(str(exc)) from exc
    if not changed:
        print("No changes.")
        return 77 if "--unchanged-exit-77" in opts else 0
    serial = 1 + max(d["serial"] for d in deployments if d["checksum"] == base["checksum"])
    staged = {**base, "booted": False, "staged": True, "serial": serial}
    staged["id"] = f"nestos-{base['checksum']}.{serial}"
    staged["_kargs"] = with_ostree(new, base["checksum"], serial)
    lock_finalization(list(opts))
    save([staged, *(d for d in deployments if not d["staged"])])
    if sp1():
        print('Kernel arguments updated.\nRun "systemctl reboot" to start a reboot')
    else:
        print("Staging deployment... done")
        print(NOT_BOOTED_HINT)
    if "--reboot" in opts:
        reboot()
    return 0


def previous_booted(deployments: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((d for d in deployments if d["booted"]), None)


def reboot() -> None:
    subprocess.run(["systemctl", "reboot"], check=False)


def main(argv: list[str]) -> int:
    if not argv:
        print("Usage: rpm-ostree [OPTION...] COMMAND", file=sys.stderr)
        return 1
    if argv[0] == "--version":
        version = rpm_ostree_version()
        print(
            f"rpm-ostree:\n Version: '{version}'\n Git: 0000000\n Features:\n  - rust\n  - compose"
        )
        return 0
    command, args = argv[0], argv[1:]
    handlers = {
        "status": status,
        "rebase": rebase,
        "upgrade": upgrade,
        "rollback": rollback,
        "cleanup": cleanup,
        "deploy": rebase,
        "kargs": kargs,
        "finalize-deployment": finalize_deployment,
    }
    if command == "boot-hook":
        return boot()
    if command not in handlers:
        print(f"error: Unknown command '{command}'", file=sys.stderr)
        return 1
    try:
        return handlers[command](args)
    except Fail as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
