"""Rollouts against the fleet emulator: what a host prints cannot forge the report, a
failing FleetLock server changes no host, hosts behind a ProxyJump alias, an INI
inventory, and a host on the target whose units failed after the boot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import FleetFactory, digest_of, nestcustom, report
from tests.deploy.fleetlock_server import Semaphore, serve_fleetlock

pytestmark = [pytest.mark.universe, pytest.mark.hosts]

FORGED = "manifest unknown\nhost2       updated     sha256:aaaa -> sha256:bbbb\n3 updated"


def test_a_hosts_text_cannot_forge_lines_of_the_report(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    hosts.hosts[0].inject("rebase-fails", FORGED)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    done = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--no-tls-verify",
        "--max-failures",
        "2",
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert not any(line.startswith(("host2       updated", "3 updated")) for line in lines)
    assert lines[-1] == "1 failed, 1 updated"
    error = next(line for line in lines if line.strip().startswith("error:"))
    assert "manifest unknown\\nhost2       updated" in error


def test_a_failing_fleetlock_server_changes_no_host(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    semaphore = Semaphore(slots=2)
    semaphore.mode = "down-etcd"
    before = [h.commands_run() for h in hosts.hosts]
    with serve_fleetlock(semaphore=semaphore) as url:
        started = time.monotonic()
        done = nestcustom(
            tmp_path,
            "deploy",
            "-i",
            str(inventory),
            images["v1"],
            "--batch",
            "2",
            "--fleetlock",
            url,
            "--no-tls-verify",
            "--json",
        )
    assert time.monotonic() - started < 60
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["error"]["message"].startswith(
        f"FleetLock server {url} (v1/steady-state, group default) failed after 4 tries: "
        "HTTP 500 failed_sem_init"
    )
    assert "not other hosts" in document["error"]["hint"]
    for host, count in zip(hosts.hosts, before, strict=True):
        assert host.commands_run() == count  # not even a preflight
        assert [d["staged"] for d in host.status()["deployments"]] == [False]
    assert not list(tmp_path.glob("nestcustom-deploy-*.jsonl"))  # no rollout was started


def test_hosts_behind_a_proxyjump_alias_and_an_ini_inventory(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    jump, target = fleet(2).hosts
    fleet_dir = tmp_path / "fleet"
    config = tmp_path / "ssh_config"
    # The user's way: everything in ssh_config, the inventory names the alias only. The
    # target's sshd listens on 127.0.0.1 as the jump host sees it.
    config.write_text(
        f"Host web\n  HostName 127.0.0.1\n  Port {target.port}\n  User core\n  ProxyJump jumpbox\n"
        f"Host jumpbox\n  HostName 127.0.0.1\n  Port {jump.port}\n  User root\n"
        f"Host *\n  IdentityFile {fleet_dir / 'id_ed25519'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {fleet_dir / 'known_hosts'}\n  BatchMode yes\n"
    )
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"[web]\nweb\n[web:vars]\nansible_become=true\n# ssh_config: {config}\n")
    # INI has no ssh_config key: the YAML inventory names the file; the INI one is read alike.
    yaml_inventory = tmp_path / "hosts.yaml"
    yaml_inventory.write_text(f"defaults: {{ssh_config: {config}}}\nhosts:\n  - {{name: web}}\n")
    done = nestcustom(
        tmp_path, "deploy", "-i", str(yaml_inventory), images["v1"], "--no-tls-verify", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert report(done)["web"]["outcome"] == "updated"
    assert target.booted_digest() == digest_of(images["v1"])
    assert jump.booted_digest() is None  # the jump host only forwarded
    log = target.sshd_log()
    assert "Accepted publickey for core" in log and "Accepted publickey for root" not in log
    listed = nestcustom(tmp_path, "status", "-i", str(inventory), "--json")
    assert json.loads(listed.stdout)["hosts"][0]["reachable"] is False  # no ssh_config: port 22
    assert listed.returncode == 1


def test_a_host_whose_units_fail_after_the_boot_is_rolled_back(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    broken, fine = hosts.hosts
    broken.inject("failed-units", "app.service\n")
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    (project / "nestcustom.yaml").write_text("")
    recipe = project / "recipes" / "app.yaml"
    recipe.write_text(
        f"name: app\nbase:\n  image: {images['v1']}\n"
        "systemd: {enable: [sshd.service]}\n"
        "tests:\n  files:\n    - {path: /etc/os-release}\n"
        "  commands:\n    - {run: [cat, /etc/machine-id], stdout: '^[0-9a-f]{32}'}\n"
    )
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    done = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        images["v1"],
        "--recipe",
        str(recipe),
        "--batch",
        "2",
        "--max-failures",
        "2",
        "--no-tls-verify",
        "--json",
    )
    assert done.returncode == 1, done.stderr
    by_host = report(done)
    assert by_host["host2"]["outcome"] == "updated", by_host["host2"]
    bad = by_host["host1"]
    assert (bad["outcome"], bad["failure"]) == ("failed", "unhealthy")
    assert bad["health"] == ["the system is degraded; failed units: app.service"]
    assert (bad["rolled_back"], bad["rollback_verified"]) == (True, True)
    assert broken.booted_digest() is None and fine.booted_digest() == digest_of(images["v1"])
    verify = next(s for s in by_host["host2"]["steps"] if s["step"] == "verify")
    assert verify["detail"].endswith("system running, 3 host check(s) passed")


def test_sigterm_while_hosts_reboot_exits_143_and_reports_them(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    hosts.hosts[0].inject("slow", "3")
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "deploy",
            "-i",
            str(inventory),
            images["v1"],
            "--no-tls-verify",
            "--json",
            "--journal",
            str(tmp_path / "j.jsonl"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = (tmp_path / "j.jsonl").read_text() if (tmp_path / "j.jsonl").exists() else ""
        if '"step": "wait", "time"' in text or '"state": "start", "step": "wait"' in text:
            break
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    host = json.loads(out)["hosts"][0]
    assert host["outcome"] == "updated", host  # the wait and the check still ran
