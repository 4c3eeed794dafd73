"""A fake NestOS host for the updater's scripts, run outside any container: `rpm-ostree`
and `systemctl` as the contract describes them (docs/contracts/nestos-rpm-ostree.md
sections 2 and 3), with their state in the directory $NC_HOST.

Only what the scripts use is here: `status [--booted] --json`, `rebase` (the manifest is
really read from the registry with skopeo, so a digest that is not there fails as a pull
would), `cleanup -p`, `finalize-deployment`, `rollback`; `systemctl is-system-running`,
`is-active`, `show`, `reboot`. Every call is appended to $NC_HOST/calls, one a line. A
reboot is only recorded: the test boots the host with `boot`, which, as ostree at
shutdown, finalizes a staged deployment unless its finalization is still locked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HOST = Path(os.environ.get("NC_HOST", "/nonexistent"))
STATE = HOST / "deployments.json"


def env_values(text: str) -> dict[str, str]:
    """The update.env nestcustom renders, read as systemd reads its KEY="VALUE" lines."""
    values = {}
    for line in text.splitlines():
        match = re.fullmatch(r'([A-Z_]+)="((?:[^"\\]|\\.)*)"', line)
        if match:
            values[match.group(1)] = re.sub(r"\\(.)", r"\1", match.group(2))
    return values


class Fail(Exception):
    pass


def load() -> list[dict[str, Any]]:
    return list(json.loads(STATE.read_text()))


def save(deployments: list[dict[str, Any]]) -> None:
    STATE.write_text(json.dumps(deployments, indent=2))


def deployment(ref: str, digest: str, *, booted: bool, staged: bool) -> dict[str, Any]:
    csum = hashlib.sha256(digest.encode()).hexdigest()
    return {
        "id": f"nestos-{csum}.0",
        "osname": "nestos",
        "checksum": csum,
        "serial": 0,
        "booted": booted,
        "staged": staged,
        "pinned": False,
        "base-commit-meta": {"ostree.manifest-digest": digest},
        "container-image-reference": ref,
        "container-image-reference-digest": digest,
    }


def status(args: list[str]) -> int:
    deployments = load()
    if "--booted" in args:
        deployments = [d for d in deployments if d["booted"]]
    shown = [{k: v for k, v in d.items() if not k.startswith("_")} for d in deployments]
    for d, original in zip(shown, deployments, strict=True):
        if original.get("_locked"):
            d["finalization-locked"] = True
    # rpm-ostree pretty-prints with json-glib: `"key" : value`, a key a line.
    text = json.dumps({"deployments": shown, "transaction": None, "update-driver": None}, indent=2)
    print(text.replace('": ', '" : '))
    return 0


def rebase(args: list[str]) -> int:
    refs = [a for a in args if not a.startswith("-")]
    known = {"--experimental", "--bypass-driver", "--lock-finalization", "-r", "--reboot"}
    if unknown := [a for a in args if a.startswith("-") and a not in known]:
        raise Fail(f"Unknown option {unknown[0]}")
    [ref] = refs
    deployments = load()
    first = next((d for d in deployments if d["staged"]), None) or next(
        d for d in deployments if d["booted"]
    )
    if first["container-image-reference"] == ref:
        raise Fail(f"Old and new refs are equal: {ref}")
    # ostree-image-signed:'s own policy check is the full emulator's (emulator/rpm_ostree_host.py)
    for transport in ("ostree-unverified-registry:", "ostree-image-signed:docker://"):
        if ref.startswith(transport):
            image = ref.removeprefix(transport)
            break
    else:
        raise Fail(f"unknown transport in {ref}")
    done = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{image}"],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        raise Fail(done.stderr.decode(errors="replace").strip().splitlines()[-1])
    digest = "sha256:" + hashlib.sha256(done.stdout).hexdigest()
    staged = deployment(ref, digest, booted=False, staged=True)
    staged["_locked"] = "--lock-finalization" in args
    save([staged, *(d for d in deployments if not d["staged"])])
    print("Staging deployment... done")
    return 0


def cleanup(args: list[str]) -> int:
    if "-p" in args:
        save([d for d in load() if not d["staged"]])
    return 0


def finalize(args: list[str]) -> int:
    """rpm-ostree's finalize-deployment (src/app/rpmostree-builtin-finalize-deployment.cxx,
    rpmostreed-transaction-types.cxx): CHECKSUM or --allow-missing-checksum, the staged
    deployment's lock removed, then a reboot."""
    values = [a for a in args if not a.startswith("-")]
    allow_missing = "--allow-missing-checksum" in args
    if not values and not allow_missing:
        raise Fail("Must provide expected CHECKSUM or --allow-missing-checksum")
    if values and allow_missing:
        raise Fail("Cannot specify both CHECKSUM and --allow-missing-checksum")
    deployments = load()
    if not deployments[0]["staged"]:
        raise Fail("No pending staged deployment found")
    if values and values[0] != deployments[0]["checksum"]:
        raise Fail(
            f"Expected staged base checksum {values[0]}, but found {deployments[0]['checksum']}"
        )
    if not deployments[0].get("_locked") and "--allow-unlocked" not in args:
        raise Fail("Staged deployment already unlocked")
    deployments[0]["_locked"] = False
    save(deployments)
    record("reboot")
    return 0


def rollback(args: list[str]) -> int:
    deployments = load()
    if any(d["staged"] for d in deployments):
        raise Fail('A staged deployment exists; drop it first with "rpm-ostree cleanup -p"')
    if len(deployments) < 2:
        raise Fail("No rollback deployment found")
    booted = next(i for i, d in enumerate(deployments) if d["booted"])
    deployments.insert(0, deployments.pop(1 if booted == 0 else 0))
    save(deployments)
    return 0


def boot() -> None:
    """What a reboot does: a staged deployment whose finalization is unlocked becomes the
    booted one (a locked one is dropped, as ostree-finalize-staged leaves it); otherwise the
    first deployment boots. Two deployments are kept."""
    deployments = load()
    staged = [d for d in deployments if d["staged"]]
    rest = [d for d in deployments if not d["staged"]]
    if staged and not staged[0].get("_locked"):
        staged[0]["staged"] = False
        rest.insert(0, staged[0])
    previous = next(d for d in rest if d["booted"])
    for d in rest:
        d["booted"] = False
    rest[0]["booted"] = True
    save([rest[0]] + ([previous] if previous is not rest[0] else rest[1:2]))


def systemctl(args: list[str]) -> int:
    state = (HOST / "system").read_text().strip() if (HOST / "system").exists() else "running"
    failed = (HOST / "failed-units").read_text().split() if (HOST / "failed-units").exists() else []
    verb = args[0]
    if verb == "reboot":
        record("reboot")
        return 0
    if verb == "is-system-running":
        print(state)
        return 0 if state == "running" else 1
    unit = args[-1]
    if verb == "is-active":
        return 1 if unit in failed else 0
    if verb == "show":
        print("Type=simple\nResult=" + ("exit-code" if unit in failed else "success"))
        return 0
    print(f"systemctl (fake host): {verb} is not here", file=sys.stderr)
    return 1


def record(line: str) -> None:
    with (HOST / "calls").open("a") as calls:
        calls.write(line + "\n")


def main(argv: list[str]) -> int:
    program, args = argv[0], argv[1:]
    record(" ".join([program, *args]))
    if program == "systemctl":
        return systemctl(args)
    if program == "boot":
        boot()
        return 0
    handlers = {
        "status": status,
        "rebase": rebase,
        "cleanup": cleanup,
        "finalize-deployment": finalize,
        "rollback": rollback,
    }
    try:
        return handlers[args[0]](args[1:])
    except Fail as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
