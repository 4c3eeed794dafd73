"""The fleet simulation (bench/fleet) at small scale, one scenario a test: 20 hosts running
the rendered updater scripts against two real FleetLock servers on a real etcd and a real
registry. What an operator reads off it: the budget held, where each host ended and why,
what `nestcustom fleet status` shows, that a restarted etcd or a killed server loses
nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.fleet.run import Settings, simulate


def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _can_unshare() or not Path("/etc/machine-id").exists(),
        reason="each simulated host needs its own mount namespace (unshare -m: root)",
    ),
    pytest.mark.skipif(
        not (shutil.which("etcd") and shutil.which("docker-registry")),
        reason="etcd and docker-registry are not installed: run scripts/setup-host",
    ),
]

SMALL = Settings(hosts=20, budget=3, reboot_seconds=1.0, retry=1, window=3.0)


def run(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    return simulate(Settings(**{**SMALL.__dict__, **changes}), tmp_path)


def test_every_host_ends_on_the_promoted_digest_and_the_budget_is_used_never_exceeded(
    tmp_path: Path,
) -> None:
    result = run(tmp_path)
    budget, hosts = result["budget"], result["hosts"]
    assert budget["max_held"] == 3  # all three slots were in use at some point, never four
    assert budget["kept"] and budget["over_budget"] == [] and budget["missed_samples"] == 0
    assert budget["max_hosts_down_for_update"] <= 3
    assert (hosts["on_new"], hosts["not_on_new"]) == (20, [])
    assert result["fleet_status"]["json_rings"] == [
        {"ring": "stable", "digest": result["digests"]["new"], "hosts": 20}
    ]
    # a HEAD of the ring tag by the script, /v2/ and the manifest by the (fake) rebase
    assert result["registry"]["per_host"] == 3
    granted = [s["granted"] for s in result["servers"]]
    assert sum(granted) >= 20 and min(granted) > 0  # both servers served the hosts
    assert result["converge"]["ratio"] is not None


def test_a_bad_image_halts_the_ring_and_the_rest_stay_on_the_old_digest(tmp_path: Path) -> None:
    result = run(tmp_path, bad_share=0.25, halt_after=2, seed=3)
    hosts, digests = result["hosts"], result["digests"]
    assert result["converge"]["halted_at"] is not None
    assert hosts["rolled_back"] >= 2
    assert hosts["on_old"] == len(hosts["not_on_new"]) > hosts["rolled_back"]
    assert all(r["booted"] == digests["old"] for r in hosts["not_on_new"])
    assert set(hosts["why_not"]) == {
        "health check failed: rolled back",
        "ring halted (403 ring_halted)",
    }
    rolled = [r for r in hosts["not_on_new"] if "rolling back" in r["why"]]
    assert rolled and all(r["bad"] for r in rolled)
    assert all("unit sshd.service is not active" in r["why"] for r in rolled)
    assert result["fleet_status"]["text"].count(": rolled back (group workers)") == len(rolled)
    assert result["budget"]["kept"]


def test_an_etcd_restart_mid_rollout_loses_no_slot(tmp_path: Path) -> None:
    result = run(tmp_path, scenario="etcd-restart", event_at=0.3, outage=1.0)
    events = [what for _, what in result["events"]]
    assert events == ["etcd stopped", "etcd started again"]
    assert result["budget"]["missed_samples"] > 0  # etcd really was away
    assert result["budget"]["kept"] and result["budget"]["max_held"] <= 3
    assert (result["hosts"]["on_new"], result["hosts"]["not_on_new"]) == (20, [])


def test_a_server_killed_mid_rollout_its_hosts_go_to_the_other(tmp_path: Path) -> None:
    result = run(tmp_path, scenario="kill-server", event_at=0.3)
    killed, other = result["servers"]
    assert killed["killed"] and not other["killed"]
    assert (result["hosts"]["on_new"], result["hosts"]["not_on_new"]) == (20, [])
    # half the hosts ask server 0 first: after the kill the other one took them
    assert other["granted"] > 10 and killed["granted"] < 10
    assert result["budget"]["kept"]
