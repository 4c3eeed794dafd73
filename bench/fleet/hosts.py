"""The simulated hosts: a state directory each, the updater's scripts as the image gets
them, the fake host's rpm-ostree and systemctl (tests/universe/fleet/updater_host.py) on
PATH, and a life driven from one asyncio loop: update, reboot, health, as systemd would
run them on a NestOS host.

Rendering: the scripts, the environment file and the health checks come from
`render_containerfile` on a recipe with `updates:`, byte for byte what the image gets.

Identity: the scripts ask real `systemd-id128 machine-id --app-specific=...` for the
FleetLock id, and real curl resolves the servers' name; every script of a host runs in its
own mount namespace (`unshare -m`) where that host's machine-id, the simulation's hosts
file and the host's address preference (gai.conf: which server it asks first) are bound
over /etc. Nothing else of the machine is changed; the namespace ends with the script.

A reboot: R seconds of sleep, the fake host's `boot` (a staged, unlocked deployment
becomes the booted one), then the health script, as nestcustom-health.service would run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from bench.fleet.services import ADDRESSES, GROUP, NAME, RING, Services
from nestcustom.containerfile.render import render_containerfile
from nestcustom.recipe.load import load_recipe
from tests.universe.fleet import updater_host

HOST_STUB = Path(updater_host.__file__)
BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"
ASKED = re.compile(r"no reboot slot yet \((\d+) ")
BAD_UNIT = "sshd.service"  # a unit the recipe enables: its check fails on a bad host
RECIPE = """\
name: fleetsim
base: {{image: {base}}}
layers: [{{name: a, install: [strace]}}]
systemd: {{enable: [sshd]}}
updates: {{ring: {ring}, fleetlock: "{url}", group: {group}, retry: {retry}, health-timeout: 5}}
"""
# glibc's default precedence table (gai.conf(5)); a line for one server puts it first.
GAI_DEFAULTS = """\
precedence ::1/128 50
precedence ::/0 40
precedence 2002::/16 30
precedence ::/96 20
precedence ::ffff:0:0/96 10
"""
ENTER = """\
#!/bin/sh
# One host's view of /etc for one script: its machine-id, the simulation's hosts file, its
# preferred FleetLock server. Run under `unshare -m`, so the mounts end with the script.
mount --bind "$NC_HOST/machine-id" /etc/machine-id &&
    mount --bind "$SIM_HOSTS" /etc/hosts &&
    mount --bind "$SIM_GAI" /etc/gai.conf || exit 125
exec sh "$1"
"""


@dataclass(frozen=True)
class Image:
    """What every host shares: the rendered scripts and settings, the fake host's programs."""

    root: Path
    env: dict[str, str]  # the rendered update.env plus what is the same on every host

    def script(self, name: str) -> Path:
        return self.root / name


def render_image(work: Path, services: Services, retry: int) -> Image:
    project = work / "project"
    (project / "recipes").mkdir(parents=True)
    recipe = project / "recipes" / "fleetsim.yaml"
    text = RECIPE.format(base=BASE, ring=RING, url=services.fleetlock_url, group=GROUP, retry=retry)
    recipe.write_text(text)
    rendered = render_containerfile(load_recipe(recipe, project).recipe, "cf/fleetsim")
    files = {f.name: f.content for f in rendered.files}
    root = work / "image"
    (root / "bin").mkdir(parents=True)
    for name in ("update.sh", "health.sh", "health-checks"):
        (root / name).write_text(files[name])
    for program in ("rpm-ostree", "systemctl"):
        wrapper = root / "bin" / program
        # -I -S: the fake host needs only the standard library; skipping site saves time.
        wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -I -S "{HOST_STUB}" {program} "$@"\n'
        )
        wrapper.chmod(0o755)
    (root / "enter").write_text(ENTER)
    (root / "hosts").write_text(
        "127.0.0.1 localhost\n" + "".join(f"{a} {NAME}\n" for a in ADDRESSES)
    )
    for index, address in enumerate(ADDRESSES):
        (root / f"gai-{index}.conf").write_text(
            GAI_DEFAULTS + f"precedence ::ffff:{address}/128 60\n"
        )
    (root / "registries.conf.d").mkdir()
    (root / "registries.conf.d" / "local.conf").write_text(
        f'[[registry]]\nlocation = "{services.registry.host}"\ninsecure = true\n'
    )
    env = {
        **updater_host.env_values(files["update.env"]),
        "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
        "NESTCUSTOM_REGISTRIES_D": str(root / "registries.conf.d"),
        "NESTCUSTOM_CHECKS": str(root / "health-checks"),
        "SIM_HOSTS": str(root / "hosts"),
    }
    return Image(root, env)


@dataclass
class Host:
    index: int
    root: Path
    env: dict[str, str]
    bad: bool  # the new image fails its health check here
    start_delay: float
    phase: str = "waiting"  # waiting, updating, rebooting, health, done
    reason: str = ""
    halted_seen: bool = False
    started: float = 0.0  # monotonic: when its update began
    held: tuple[float, float] | None = None  # monotonic: its reboot for the update, health end
    process: asyncio.subprocess.Process | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=4))

    def deployments(self) -> list[dict[str, object]]:
        return list(json.loads((self.root / "deployments.json").read_text()))

    def booted_digest(self) -> str:
        booted = next(d for d in self.deployments() if d["booted"])
        return str(booted["container-image-reference-digest"])

    def reboots_asked(self) -> int:
        calls = self.root / "calls"
        if not calls.exists():
            return 0
        return sum(1 for line in calls.read_text().splitlines() if line == "reboot")

    def stop(self) -> None:
        """End the script this host runs (SIGTERM to its process group)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)


def make_hosts(work: Path, image: Image, services: Services, count: int, plan: Plan) -> list[Host]:
    ref = f"ostree-unverified-registry:{services.image}@{services.images['v1']}"
    booted = updater_host.deployment(ref, services.images["v1"], booted=True, staged=False)
    hosts = []
    for index in range(count):
        root = work / "hosts" / f"{index:04d}"
        root.mkdir(parents=True)
        (root / "machine-id").write_text(uuid.uuid4().hex + "\n")
        (root / "deployments.json").write_text(json.dumps([booted]))
        env = {
            **image.env,
            "NC_HOST": str(root),
            "NESTCUSTOM_STATE": str(root / "state"),
            "NESTCUSTOM_AUTH": str(root / "auth.json"),
            "SIM_GAI": str(image.root / f"gai-{index % len(services.servers)}.conf"),
            "SIM_OLD": services.images["v1"],
        }
        hosts.append(Host(index, root, env, index in plan.bad, plan.delays[index]))
    return hosts


@dataclass(frozen=True)
class Plan:
    bad: frozenset[int]  # hosts whose health check fails on the new image
    delays: tuple[float, ...]  # when each host's update timer fires, seconds after promote


@dataclass
class Fleet:
    """The hosts' lives and what the simulation counts of them."""

    image: Image
    hosts: list[Host]
    reboot_seconds: float
    down: int = 0  # hosts between an update's reboot and the end of its health script
    max_down: int = 0
    rollback_reboots: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # pre-reboot answers but 200
    refused_at: list[float] = field(default_factory=list)

    async def run_script(self, host: Host, name: str) -> int:
        process = await asyncio.create_subprocess_exec(
            "unshare", "-m", "sh", str(self.image.script("enter")), str(self.image.script(name)),
            env=host.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        host.process = process
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            host.log.append(line)
            host.halted_seen |= "ring_halted" in line
            if match := ASKED.search(line):
                self.refusals[match.group(1)] += 1
                self.refused_at.append(time.monotonic())
        return await process.wait()

    async def reboot(self, host: Host) -> None:
        await asyncio.sleep(self.reboot_seconds)
        boot = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(HOST_STUB), "boot", env=host.env
        )
        if await boot.wait():
            raise RuntimeError(f"host {host.index}: the fake host's boot failed")
        failed = host.root / "failed-units"
        if host.bad and host.booted_digest() != host.env["SIM_OLD"]:
            failed.write_text(BAD_UNIT + "\n")
        else:
            failed.unlink(missing_ok=True)

    async def live(self, host: Host) -> None:
        await asyncio.sleep(host.start_delay)
        host.started = time.monotonic()
        host.phase = "updating"
        asked = host.reboots_asked()
        code = await self.run_script(host, "update.sh")
        if host.reboots_asked() == asked:
            # A reason set already is the simulation's, from before it stopped the script.
            host.reason = host.reason or f"update exited {code}: {self._last(host)}"
            host.phase = "done"
            return
        host.phase = "rebooting"
        rebooted = time.monotonic()
        self.down += 1
        self.max_down = max(self.max_down, self.down)
        try:
            await self.reboot(host)
            host.phase = "health"
            asked = host.reboots_asked()
            code = await self.run_script(host, "health.sh")
        finally:
            self.down -= 1
            host.held = (rebooted, time.monotonic())
        if host.reboots_asked() > asked:  # rolled back: the reboot into the old deployment
            host.reason = " / ".join(line for line in host.log if "nestcustom-health" in line)
            self.rollback_reboots += 1
            await self.reboot(host)
            await self.run_script(host, "health.sh")  # nothing staged: nothing to judge
        elif code:
            host.reason = f"health exited {code}: {self._last(host)}"
        host.phase = "done"

    @staticmethod
    def _last(host: Host, containing: str = "") -> str:
        found = [line for line in host.log if containing in line]
        return found[-1] if found else ""
