"""The host-side updater of `updates:`, end to end on test hosts: images built by
nestcustom from a recipe with `updates:`, pushed to the universe registry; a host deployed
to v1; a ring moved with `nestcustom promote`; a real etcd and `nestcustom fleetlock
serve`; the image's own units and scripts run on the host through real reboots.

The hosts have no systemd as PID 1: their init (nc-init) starts the units the booted image
enables for multi-user.target, and their `systemctl start` runs a unit from its file
(tests/universe/fleet/emulator/units_host.py). The test starts nestcustom-update.service
as its timer would; the emulator runs no timers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nestcustom.deploy.fleetlock import zincati_id
from nestcustom.fleet.etcd import Etcd
from tests.deploy.conftest import FleetFactory, nestcustom, podman, report
from tests.fleet.conftest import EtcdServer, free_port
from tests.universe.fleet.harness import TestHost
from tests.universe.registry import Registry

pytestmark = [pytest.mark.universe, pytest.mark.hosts]

GROUP = "workers"
STATE = "/var/lib/nestcustom-update"
UPDATE_LOG = "/var/log/nestcustom-emu/nestcustom-update.service.log"
HEALTH_LOG = "/var/log/nestcustom-emu/nestcustom-health.service.log"
CHECK_UNIT = "[Unit]\nDescription=nc check\n\n[Service]\nType=oneshot\nExecStart={}\n\n[Install]\nWantedBy=multi-user.target\n"  # fmt: skip


@dataclass(frozen=True)
class Lock:
    """`nestcustom fleetlock serve` on a real etcd."""

    url: str
    etcd: str

    def holders(self) -> list[str]:
        found = Etcd(self.etcd).get(f"com.coreos.airlock/groups/{GROUP}/v1/semaphore")
        return list(json.loads(found.text)["holders"]) if found.version else []

    def post(self, kind: str, holder: str) -> int:
        body = json.dumps({"client_params": {"id": holder, "group": GROUP}}).encode()
        request = urllib.request.Request(
            f"{self.url}v1/{kind}", body, {"fleet-lock-protocol": "true"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def status(self, cwd: Path) -> dict[str, dict[str, Any]]:
        done = nestcustom(cwd, "fleet", "status", "--etcd", self.etcd, "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout)["hosts"])


@dataclass(frozen=True)
class Release:
    repo: str  # REG/updater/nestos
    digests: dict[str, str]  # v1, v2, bad -> sha256:...
    origin_layers: tuple[str, ...]
    lock: Lock


@pytest.fixture(scope="module")
def release(
    registry: Registry, nestos_sp2_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """A FleetLock server (its port fixed first: the recipe names it), and three builds of
    one recipe with `updates:`: v1 and v2, whose check unit succeeds, and bad, whose fails."""
    root = tmp_path_factory.mktemp("updater")
    etcd = EtcdServer(root / "etcd", free_port())
    etcd.start()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nestcustom", "fleetlock", "serve", "--etcd", etcd.url,
         "--listen", f"127.0.0.1:{port}", "--group", f"{GROUP}=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lock = Lock(f"http://127.0.0.1:{port}/", etcd.url)
        project = root / "project"
        (project / "recipes").mkdir(parents=True)
        (project / "files").mkdir()
        repo = f"{registry.host}/updater/nestos"
        digests = {}
        for name, command in (("v1", "/bin/true"), ("v2", "/bin/true"), ("bad", "/bin/false")):
            (project / "files" / name).write_text(f"{name}\n")
            (project / "files" / f"{name}.service").write_text(CHECK_UNIT.format(command))
            (project / "recipes" / f"{name}.yaml").write_text(
                f"name: {name}\nbase: {{image: '{nestos_sp2_image}'}}\n"
                f"files:\n  - {{src: files/{name}, dest: /usr/share/nc-version}}\n"
                f"  - {{src: files/{name}.service, dest: /usr/lib/systemd/system/nc-check.service}}\n"
                "systemd: {enable: [nc-check.service]}\n"
                f"updates: {{ring: stable, fleetlock: '{lock.url}', group: {GROUP},"
                " retry: 2, health-timeout: 30}\n"
            )
            built = nestcustom(
                project, "build", f"recipes/{name}.yaml", "--tag", f"{repo}:{name}",
                "--push", "--no-tls-verify", "--json",
            )  # fmt: skip
            assert built.returncode == 0, built.stderr
            digests[name] = str(json.loads(built.stdout)["images"][0]["pinned"]).split("@")[1]
        # The base the hosts were installed from, as the registry has its layers.
        origin = f"{registry.host}/updater/origin:base"
        podman("tag", nestos_sp2_image, origin)
        podman("push", "-q", "--tls-verify=false", origin)
        manifest = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{origin}"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        layers = tuple(layer["digest"] for layer in json.loads(manifest)["layers"])
        yield Release(repo, digests, layers, lock)
    finally:
        server.terminate()
        server.wait(timeout=30)
        etcd.stop()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (RuntimeError, ValueError, KeyError, StopIteration):
            pass  # the host is rebooting
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def host_on_v1(release: Release, fleet: FleetFactory, tmp_path: Path) -> TestHost:
    hosts = fleet(1, origin_layers=release.origin_layers)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    done = nestcustom(
        tmp_path, "deploy", "-i", str(inventory), f"{release.repo}@{release.digests['v1']}",
        "--no-tls-verify", "--reboot-timeout", "60", "--json",
    )  # fmt: skip
    assert report(done)["host1"]["outcome"] == "updated", done.stdout
    host = hosts.hosts[0]
    # v1's own units came with it: the update service is there, health skipped it (no update).
    assert "nestcustom-update.service" in host.exec("ls", "/usr/lib/systemd/system")
    assert "skipped" in host.exec("cat", HEALTH_LOG)
    return host


def fleetlock_id(host: TestHost) -> str:
    """The id Zincati would send for this host (what the updater must send too)."""
    found = zincati_id(host.exec("cat", "/etc/machine-id"))
    assert found is not None
    return found


def promote(release: Release, name: str, cwd: Path) -> None:
    done = nestcustom(
        cwd, "promote", "--no-tls-verify", "--ring", "stable",
        f"{release.repo}@{release.digests[name]}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def start_update(host: TestHost) -> subprocess.Popen[str]:
    """What the timer does: start the oneshot; it returns when the host reboots."""
    return subprocess.Popen(
        ["podman", "exec", host.container, "systemctl", "start", "nestcustom-update.service"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def booted(host: TestHost) -> dict[str, Any]:
    return next(d for d in host.status()["deployments"] if d["booted"])


def test_a_host_updates_under_a_slot_and_reports_healthy(
    release: Release, fleet: FleetFactory, tmp_path: Path
) -> None:
    host = host_on_v1(release, fleet, tmp_path)
    host_id = fleetlock_id(host)
    v1, v2 = release.digests["v1"], release.digests["v2"]
    first_boot = host.boot_id()
    promote(release, "v2", tmp_path)
    assert release.lock.post("pre-reboot", "someone-else") == 200  # the group's one slot

    updates = [start_update(host)]
    try:
        # Staged by digest, finalization locked, and no reboot while the slot is taken.
        wait_for("the refused slot", lambda: "no reboot slot yet" in host.exec("cat", UPDATE_LOG))
        staged = host.status()["deployments"][0]
        assert (
            staged["container-image-reference"] == f"ostree-unverified-registry:{release.repo}@{v2}"
        )
        assert (staged["staged"], staged["container-image-reference-digest"]) == (True, v2)
        assert staged.get("finalization-locked") is True
        assert booted(host)["container-image-reference-digest"] == v1
        assert host.boot_id() == first_boot
        assert release.lock.holders() == ["someone-else"]

        # A reboot meanwhile (an operator's, a crash) is not the update: the locked
        # deployment is not finalized, the host boots v1 again and reports that.
        host.exec("systemctl", "reboot")
        updates[0].wait(timeout=60)
        wait_for("the unplanned reboot", lambda: host.boot_id() != first_boot)
        second_boot = host.boot_id()
        assert booted(host)["container-image-reference-digest"] == v1
        assert not any(d["staged"] for d in host.status()["deployments"])
        assert "Not finalizing; found /run/ostree/staged-deployment-locked" in host.sshd_log()
        wait_for(
            "the not-updated report",
            lambda: f"booted {v1}, not the staged {v2}" in host.exec("cat", HEALTH_LOG),
        )
        assert release.lock.holders() == ["someone-else"]

        # The timer's next run stages v2 again and waits for the slot.
        updates.append(start_update(host))
        wait_for(
            "the second staging",
            lambda: host.status()["deployments"][0].get("finalization-locked") is True,
        )
        host.inject("slow", "5")  # the next boot takes its time: the slot is seen held
        assert release.lock.post("steady-state", "someone-else") == 200
        wait_for("the host's slot", lambda: release.lock.holders() == [host_id])
        updates[1].wait(timeout=60)  # the finalize rebooted the host
        wait_for("the reboot", lambda: host.boot_id() != second_boot)
        host.clear("slow")
        # After the boot: the health unit reports steady-state, which frees the slot.
        wait_for("the report", lambda: release.lock.status(tmp_path)[host_id]["health"] == "ok")
    finally:
        for update in updates:
            update.kill()
    assert release.lock.holders() == []
    row = release.lock.status(tmp_path)[host_id]
    assert {k: row[k] for k in ("group", "ring", "digest", "health")} == {
        "group": GROUP, "ring": "stable", "digest": v2, "health": "ok",
    }  # fmt: skip
    deployments = host.status()["deployments"]
    assert [(d["container-image-reference-digest"], d["booted"]) for d in deployments] == [
        (v2, True),
        (v1, False),
    ]
    assert host.read(f"{STATE}/staged") is None
    assert f"healthy on {v2}" in host.exec("cat", HEALTH_LOG)
    text = nestcustom(tmp_path, "fleet", "status", "--etcd", release.lock.etcd).stdout
    assert f"ring stable  {v2}  1 host(s)" in text

    # Nothing new on the ring: the next run changes nothing.
    again = host.exec("systemctl", "start", "nestcustom-update.service")
    assert again == ""
    assert f"on {release.repo}:ring-stable already ({v2})" in host.exec("cat", UPDATE_LOG)
    assert len(host.status()["deployments"]) == 2


def test_a_failed_check_after_the_boot_rolls_back_and_is_not_taken_again(
    release: Release, fleet: FleetFactory, tmp_path: Path
) -> None:
    host = host_on_v1(release, fleet, tmp_path)
    host_id = fleetlock_id(host)
    v1, bad = release.digests["v1"], release.digests["bad"]
    first_boot = host.boot_id()
    promote(release, "bad", tmp_path)

    update = start_update(host)
    try:
        update.wait(timeout=60)  # staged, slot taken, finalized: the host reboots into bad
        wait_for(
            "the rolled-back report",
            lambda: release.lock.status(tmp_path)[host_id].get("health") == "rolled-back",
        )
        # Then the health unit reboots the host into v1 again.
        wait_for(
            "the boot back into v1",
            lambda: (
                booted(host)["container-image-reference-digest"] == v1
                and host.boot_id() != first_boot
            ),
        )
    finally:
        update.kill()
    row = release.lock.status(tmp_path)[host_id]
    assert (row["ring"], row["digest"], row["health"]) == ("stable", bad, "rolled-back")
    assert release.lock.holders() == []
    health = host.exec("cat", HEALTH_LOG)
    assert "unit nc-check.service is not active" in health
    assert f"unhealthy on {bad}: rolling back" in health
    assert host.exec("cat", f"{STATE}/refused").split() == [bad]
    host.wait_ready()
    assert host.exec("systemctl", "is-system-running").strip() == "running"  # v1's check passes

    # The ring still serves bad: this host does not take it again.
    host.exec("systemctl", "start", "nestcustom-update.service")
    assert f"{bad} was rolled back on this host: not taken again" in host.exec("cat", UPDATE_LOG)
    assert not any(d["staged"] for d in host.status()["deployments"])
