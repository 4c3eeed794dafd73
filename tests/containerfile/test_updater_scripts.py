"""The updater's scripts, as rendered into the image, run with sh against a fake host
(tests/universe/fleet/updater_host.py: rpm-ostree and systemctl as the contract says), a
real registry (Debian's docker-registry), a real FleetLock server on a real etcd, real
curl and systemd-id128. What a user sees: what is staged and by which reference, which
slot is taken and when, when the host reboots, what `fleet status` gets to show."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from nestcustom.containerfile.render import render_containerfile
from nestcustom.deploy.fleetlock import zincati_id
from nestcustom.fleet.etcd import Etcd
from nestcustom.fleet.lockserver import handler_for
from nestcustom.fleet.lockstore import Budget, LockStore
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe
from tests.fleet.conftest import EtcdServer, free_port
from tests.fleet.test_promote_registry import push
from tests.universe.fleet import updater_host
from tests.universe.registry import Registry, run_registry

HOST_STUB = Path(updater_host.__file__)  # run as a program: it is the hosts' rpm-ostree
REPOSITORY = "nestos/agent"
RECIPE = f"""\
name: r
base: {{image: {BASE}}}
layers: [{{name: a, install: [strace]}}]
systemd: {{enable: [sshd]}}
updates: {{ring: stable, fleetlock: "http://placeholder.invalid/", group: workers}}
"""
MACHINE_ID = Path("/etc/machine-id")

pytestmark = pytest.mark.skipif(
    not MACHINE_ID.exists(), reason="systemd-id128 needs /etc/machine-id"
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def images(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("images")
    return {name: push(registry, tmp, REPOSITORY, name) for name in ("one", "two")}


@dataclass
class Lock:
    url: str
    store: LockStore

    def holders(self, group: str = "workers") -> list[str]:
        found = self.store.etcd.get(f"com.coreos.airlock/groups/{group}/v1/semaphore")
        return list(json.loads(found.text)["holders"]) if found.version else []

    def post(self, kind: str, holder: str, group: str = "workers") -> int:
        body = json.dumps({"client_params": {"id": holder, "group": group}}).encode()
        request = urllib.request.Request(
            f"{self.url}v1/{kind}", body, {"fleet-lock-protocol": "true"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[Lock]:
    etcd = EtcdServer(tmp_path / "etcd", free_port())
    etcd.start()
    store = LockStore(Etcd(etcd.url), Budget({"workers": 1}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(store, lambda text: None))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Lock(f"http://127.0.0.1:{server.server_address[1]}/", store)
    server.shutdown()
    server.server_close()
    etcd.stop()


@dataclass
class Host:
    root: Path
    env: dict[str, str]
    scripts: dict[str, Path]
    wrap: tuple[str, ...] = ()  # what a script runs under (own_registries_conf)

    @property
    def id(self) -> str:
        found = zincati_id(MACHINE_ID.read_text())
        assert found is not None
        return found

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.wrap, "sh", str(self.scripts[script])],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, script: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.wrap, "sh", str(self.scripts[script])],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def calls(self) -> list[str]:
        path = self.root / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def deployments(self) -> list[dict[str, object]]:
        return list(json.loads((self.root / "deployments.json").read_text()))

    def booted_digest(self) -> object:
        return next(d for d in self.deployments() if d["booted"])[
            "container-image-reference-digest"
        ]

    def boot(self) -> None:
        subprocess.run([*self.stub, "boot"], env=self.env, check=True)

    @property
    def stub(self) -> list[str]:
        return [sys.executable, str(HOST_STUB)]


def tag_ring(registry: Registry, digest: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{registry.host}/{REPOSITORY}@{digest}",
         f"docker://{registry.host}/{REPOSITORY}:ring-stable"],
        check=True, capture_output=True,
    )  # fmt: skip


def make_host(root: Path, recipe: Path, registry: Registry, booted_on: str, lock: Lock) -> Host:
    """A host booted on `booted_on`, its updater's files and settings from the image the
    recipe renders. What lives under /etc on a host lives under `root` here: the keys the
    trust file names (/etc/pki/containers/) included."""
    files = {
        f.name: f.content for f in render_containerfile(load_recipe(recipe).recipe, "cf/r").files
    }
    (root / "bin").mkdir(parents=True)
    for program in ("rpm-ostree", "systemctl"):
        wrapper = root / "bin" / program
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HOST_STUB}" {program} "$@"\n')
        wrapper.chmod(0o755)
    scripts = {}
    for name in ("update.sh", "health.sh", "health-checks"):
        scripts[name] = root / name
        scripts[name].write_text(files[name])
    (root / "verify").write_text(files["verify.sh"])  # update runs its sibling, as on a host
    (root / "verify").chmod(0o755)
    (root / "update-trust").write_text(
        files["update-trust"].replace(" /etc/pki/containers/", f" {root}/pki/")
    )
    (root / "registries.conf.d").mkdir()
    (root / "registries.conf.d" / "local.conf").write_text(
        f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    ref = f"ostree-unverified-registry:{registry.host}/{REPOSITORY}@{booted_on}"
    booted = updater_host.deployment(ref, booted_on, booted=True, staged=False)
    (root / "deployments.json").write_text(json.dumps([booted]))
    env = {
        **updater_host.env_values(files["update.env"]),
        "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
        "NC_HOST": str(root),
        "NESTCUSTOM_STATE": str(root / "state"),
        "NESTCUSTOM_REGISTRIES_D": str(root / "registries.conf.d"),
        "NESTCUSTOM_AUTH": str(root / "auth.json"),
        "NESTCUSTOM_CHECKS": str(scripts["health-checks"]),
        "NESTCUSTOM_TRUST": str(root / "update-trust"),
        "NESTCUSTOM_VERIFIED_LOG": str(root / "verified"),
        "NESTCUSTOM_FLEETLOCK": lock.url,
        "NESTCUSTOM_RETRY": "1",
        "NESTCUSTOM_HEALTH_TIMEOUT": "5",
    }
    return Host(root, env, {"update": scripts["update.sh"], "health": scripts["health.sh"]})


@pytest.fixture
def host(
    tmp_path: Path,
    write_recipe: WriteRecipe,
    registry: Registry,
    images: dict[str, str],
    lock: Lock,
) -> Host:
    """A host booted on image `one`, its updater's settings from the rendered image."""
    made = make_host(tmp_path / "host", write_recipe(RECIPE), registry, images["one"], lock)
    assert made.env["NESTCUSTOM_RING"] == "stable" and made.env["NESTCUSTOM_GROUP"] == "workers"
    return made


def test_no_new_digest_stages_nothing_and_asks_no_slot(
    host: Host, registry: Registry, images: dict[str, str], lock: Lock
) -> None:
    tag_ring(registry, images["one"])
    done = host.run("update")
    assert done.returncode == 0, done.stderr
    assert f"on {registry.host}/{REPOSITORY}:ring-stable already ({images['one']})" in done.stderr
    assert not [c for c in host.calls() if "rebase" in c or "finalize" in c or c == "reboot"]
    assert lock.holders() == []
    assert lock.store.hosts() == {}


def test_a_new_digest_is_staged_by_digest_then_the_slot_then_finalize_and_reboot(
    host: Host, registry: Registry, images: dict[str, str], lock: Lock
) -> None:
    tag_ring(registry, images["two"])
    done = host.run("update")
    assert done.returncode == 0, done.stderr
    image = f"{registry.host}/{REPOSITORY}"
    changes = [c for c in host.calls() if "status" not in c]
    assert changes == [
        "rpm-ostree cleanup -p",
        "rpm-ostree rebase --experimental --bypass-driver --lock-finalization "
        f"ostree-unverified-registry:{image}@{images['two']}",
        "rpm-ostree finalize-deployment --allow-missing-checksum",
        "reboot",
    ]
    assert lock.holders() == [host.id]  # Zincati's id for this machine
    assert lock.store.hosts()[host.id]["event"] == "rebooting"
    host.boot()
    assert host.booted_digest() == images["two"]


def test_a_refused_slot_is_asked_again_and_nothing_reboots_until_it_is_granted(
    host: Host, registry: Registry, images: dict[str, str], lock: Lock
) -> None:
    tag_ring(registry, images["two"])
    assert lock.post("pre-reboot", "another-host") == 200  # the group's only slot
    process = host.start("update")
    assert process.stderr is not None
    asked = 0
    try:
        while asked < 2:
            line = process.stderr.readline()
            assert line, "the script ended before asking twice"
            asked += "no reboot slot yet (500" in line
        assert [c for c in host.calls() if "finalize" in c or c == "reboot"] == []
        assert host.deployments()[0]["staged"] is True
        assert lock.holders() == ["another-host"]
        assert lock.post("steady-state", "another-host") == 200
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            process.wait()
    assert process.returncode == 0, err
    assert host.calls()[-2:] == [
        "rpm-ostree finalize-deployment --allow-missing-checksum",
        "reboot",
    ]
    assert lock.holders() == [host.id]


def updated(host: Host, registry: Registry, images: dict[str, str]) -> None:
    tag_ring(registry, images["two"])
    assert host.run("update").returncode == 0
    host.boot()
    assert host.booted_digest() == images["two"]
    (host.root / "calls").unlink()


def test_a_healthy_boot_reports_digest_and_ring_and_frees_the_slot(
    host: Host, registry: Registry, images: dict[str, str], lock: Lock
) -> None:
    updated(host, registry, images)
    done = host.run("health")
    assert done.returncode == 0, done.stderr
    report = lock.store.hosts()[host.id]
    assert (report["event"], report["digest"], report["ring"], report["health"]) == (
        "steady",
        images["two"],
        "stable",
        "ok",
    )
    assert lock.holders() == []
    assert "reboot" not in host.calls() and "rpm-ostree rollback" not in host.calls()
    assert host.run("health").returncode == 0  # judged once: nothing more to do
    assert "rpm-ostree rollback" not in host.calls()


def test_a_failed_check_rolls_back_reboots_inside_the_budget_then_reports_and_never_retakes(
    host: Host, registry: Registry, images: dict[str, str], lock: Lock
) -> None:
    updated(host, registry, images)
    (host.root / "failed-units").write_text("sshd.service\n")  # a unit the recipe enables
    done = host.run("health")
    assert done.returncode == 0, done.stderr
    assert "unit sshd.service is not active" in done.stderr
    changes = [c for c in host.calls() if c.startswith("rpm-ostree r") or c == "reboot"]
    assert changes == ["rpm-ostree rollback", "reboot"]
    # The rollback's reboot is one of the budget's: the slot is still this host's.
    assert lock.holders() == [host.id]
    assert lock.store.hosts()[host.id]["event"] == "rebooting"
    host.boot()
    assert host.booted_digest() == images["one"]
    (host.root / "failed-units").unlink()
    back = host.run("health")
    assert back.returncode == 0, back.stderr
    assert f"back from {images['two']} after the rollback" in back.stderr
    report = lock.store.hosts()[host.id]
    assert (report["digest"], report["ring"], report["health"]) == (
        images["two"],
        "stable",
        "rolled-back",
    )
    assert lock.holders() == []
    assert host.run("health").returncode == 0  # reported once: nothing more to do
    assert [c for c in host.calls() if c == "reboot"] == ["reboot"]
    again = host.run("update")
    assert again.returncode == 0, again.stderr
    assert f"{images['two']} was rolled back on this host: not taken again" in again.stderr
    assert not [c for c in host.calls() if "rebase" in c]


def test_a_system_that_is_not_running_fails_the_boot(
    host: Host, registry: Registry, images: dict[str, str], lock: Lock
) -> None:
    updated(host, registry, images)
    (host.root / "system").write_text("degraded\n")
    done = host.run("health")
    assert "the system is degraded" in done.stderr
    assert "rpm-ostree rollback" in host.calls()
    host.boot()
    (host.root / "system").unlink()
    assert host.run("health").returncode == 0
    assert lock.store.hosts()[host.id]["health"] == "rolled-back"


def test_a_commands_output_must_match_its_pattern_or_the_boot_rolls_back(
    tmp_path: Path,
    write_recipe: WriteRecipe,
    registry: Registry,
    images: dict[str, str],
    lock: Lock,
) -> None:
    mode = tmp_path / "mode"
    recipe = write_recipe(
        RECIPE + f"tests:\n  commands:\n    - {{run: [cat, {mode}], stdout: '^prod(uction)?$'}}\n"
        # values filled as the build filled them: the recipe's now, the image's on the host
        "    - {run: [test, '{{recipe.name}}-{{arch}}', '=', 'r-" + platform.machine() + "']}\n"
        "    - {run: [sh, -c, '. /etc/os-release; test \"$ID\" = \"$1\"', sh, '{{os.id}}']}\n"
        "    - {run: ['true'], stdout: '^$'}\n"  # no output at all is an output too
    )
    mode.write_text("production\n")  # the pattern reads the whole output, less its last newline
    good = make_host(tmp_path / "good", recipe, registry, images["one"], lock)
    updated(good, registry, images)
    done = good.run("health")
    assert (done.returncode, lock.store.hosts()[good.id]["health"]) == (0, "ok"), done.stderr
    mode.write_text("staging\nproduction\n")  # exits 0, prints something else
    bad = make_host(tmp_path / "bad", recipe, registry, images["one"], lock)
    updated(bad, registry, images)
    done = bad.run("health")
    assert f"command cat {mode}: output does not match '^prod(uction)?$'" in done.stderr
    assert "rpm-ostree rollback" in bad.calls()
