"""The host emulator's contract cases that join the fleet tests: upgrade and registry credentials."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import FleetFactory, digest_of, nestcustom, podman, report
from tests.universe.fleet.authregistry import run_auth_registry

pytestmark = [pytest.mark.universe, pytest.mark.hosts]


def test_upgrade_of_a_pinned_image_has_nothing_to_do_and_checks_the_driver(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(1)
    host = hosts.hosts[0]
    deployed = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(hosts.inventory(tmp_path / "h.yaml")),
        images["v1"],
        "--no-tls-verify",
    )
    assert deployed.returncode == 0, deployed.stderr
    done = subprocess.run(
        ["podman", "exec", host.container, "rpm-ostree", "upgrade", "--unchanged-exit-77"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (77, "No upgrade available.\n")
    host.inject("zincati", "failed")  # a failed driver unit blocks too
    blocked = subprocess.run(
        ["podman", "exec", host.container, "rpm-ostree", "upgrade"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert blocked.returncode == 1
    assert blocked.stderr.startswith(
        "error: Updates and deployments are driven by Zincati (zincati.service)"
    )


def test_registry_credentials_live_on_the_host(
    fleet: FleetFactory, images: dict[str, str], tmp_path: Path
) -> None:
    with run_auth_registry(tmp_path / "auth-registry") as registry:
        auth = tmp_path / "auth.json"
        auth.write_text(registry.auth_json())
        private = f"{registry.host}/fleet/nestos:v1"
        podman("tag", images["v1"], private)
        podman("push", "-q", "--tls-verify=false", "--authfile", str(auth), private)
        hosts = fleet(1)
        host = hosts.hosts[0]
        host.trust_registry(registry.host)
        inventory = str(hosts.inventory(tmp_path / "h.yaml"))
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth)}  # the controller's own credentials
        refused = nestcustom(
            tmp_path, "deploy", "-i", inventory, private, "--no-tls-verify", "--json", env=env
        )
        assert refused.returncode == 1
        error = report(refused)["host1"]["error"]
        assert "unauthorized" in error and error.startswith("rpm-ostree rebase failed: error: ")
        assert "\x1b" not in error and host.lock() is None  # released after the failed rebase
        host.exec(
            "sh",
            "-c",
            'mkdir -p /etc/ostree && printf %s "$1" > /etc/ostree/auth.json',
            "sh",
            registry.auth_json(),
        )
        accepted = nestcustom(
            tmp_path, "deploy", "-i", inventory, private, "--no-tls-verify", "--json", env=env
        )
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        assert host.booted_digest() == digest_of(images["v1"])
