"""Kernel arguments in a rollout, end to end: images built by nestcustom with
`kernel-arguments:`, deployed to hosts running the host-mode rpm-ostree emulator (its
`kargs` as rpm-ostree's, /proc/cmdline from the booted deployment, the booted image's
/usr/lib/bootc/kargs.d read from its layers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import FleetFactory, nestcustom, report
from tests.universe.registry import Registry

pytestmark = [pytest.mark.universe, pytest.mark.hosts]

BASE_TAG = "hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP2.20230922.0-x86_64"
RECIPES = {
    "k1": "append: [nc.one=1, nosmt]\n  delete: [quiet]\n  replace: ['console=ttyS0,115200n8=ttyS0,9600']\n",
    "k2": "append: [nosmt, nc.two=2]\n",
}


@pytest.fixture(scope="module")
def kargs_images(
    registry: Registry, nestos_sp2_image: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Two images built by nestcustom build, pushed: k1 appends, deletes and replaces; k2
    appends nosmt again and nc.two=2 instead of nc.one=1."""
    project = tmp_path_factory.mktemp("kargs-project")
    (project / "recipes").mkdir()
    refs = {}
    for name, kargs in RECIPES.items():
        (project / "recipes" / f"{name}.yaml").write_text(
            f"name: {name}\nbase: {{image: {BASE_TAG}}}\nkernel-arguments:\n  {kargs}"
        )
        reference = f"{registry.host}/fleet/kargs:{name}"
        done = subprocess.run(
            [sys.executable, "-m", "nestcustom", "build", f"recipes/{name}.yaml",
             "--base", nestos_sp2_image, "--tag", reference, "--push", "--no-tls-verify"],
            cwd=project, capture_output=True, text=True, check=False, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        refs[name] = reference
    return refs


def cmdline(host: object) -> list[str]:
    return str(host.exec("cat", "/proc/cmdline")).split()  # type: ignore[attr-defined]


def deploy(tmp_path: Path, inventory: Path, image: str, *more: str) -> dict[str, dict[str, object]]:
    result = nestcustom(
        tmp_path, "deploy", "-i", str(inventory), image, "--no-tls-verify",
        "--reboot-timeout", "60", "--max-failures", "5", "--json", *more,
    )  # fmt: skip
    return report(result)


def test_the_difference_is_applied_then_the_next_image_removes_what_it_no_longer_appends(
    fleet: FleetFactory, kargs_images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    before = cmdline(hosts.hosts[0])
    assert "quiet" in before and "console=ttyS0,115200n8" in before
    first = deploy(tmp_path, inventory, kargs_images["k1"], "--batch", "2")
    for row in first.values():
        assert row["outcome"] == "updated", row
        steps: list[dict[str, str]] = row["steps"]  # type: ignore[assignment]
        rebase = next(s for s in steps if s["step"] == "rebase")
        assert (
            "kernel arguments +nc.one=1 +nosmt +console=ttyS0,9600 -quiet -console=ttyS0,115200n8"
            in rebase["detail"]
        )
    args = cmdline(hosts.hosts[0])
    assert {"nc.one=1", "nosmt", "console=ttyS0,9600", "console=tty0"} <= set(args)
    assert "quiet" not in args and "console=ttyS0,115200n8" not in args
    # The host's /usr is the image's: bootc's kargs.d file of k1 is there.
    toml = hosts.hosts[0].exec("cat", "/usr/lib/bootc/kargs.d/nestcustom-k1.toml")
    assert 'kargs = ["nc.one=1", "nosmt"]' in toml

    second = deploy(tmp_path, inventory, kargs_images["k2"], "--batch", "2")
    assert {row["outcome"] for row in second.values()} == {"updated"}
    args = cmdline(hosts.hosts[1])
    assert "nc.two=2" in args and "nosmt" in args
    assert "nc.one=1" not in args  # k1 appended it, k2 does not: removed, as bootc does
    assert args.count("nosmt") == 1

    # A rollback boots the previous deployment, with its own arguments.
    back = nestcustom(tmp_path, "rollback", "-i", str(inventory), "--hosts", "host2", "--json")
    assert back.returncode == 0, back.stderr
    args = cmdline(hosts.hosts[1])
    assert "nc.one=1" in args and "nc.two=2" not in args


def test_a_host_that_boots_without_the_arguments_is_rolled_back_to_its_old_ones(
    fleet: FleetFactory, kargs_images: dict[str, str], tmp_path: Path
) -> None:
    hosts = fleet(2)
    broken, bad_file = hosts.hosts
    broken.inject("boot-drops-kargs")  # a boot entry written without the new options
    bad_file.exec("sh", "-c", "echo 'kargs = 1' > /usr/lib/bootc/kargs.d/99-local.toml")
    before = cmdline(broken)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    rows = deploy(tmp_path, inventory, kargs_images["k1"], "--batch", "2")
    row = rows["host1"]
    assert (row["outcome"], row["failure"]) == ("failed", "kernel-arguments"), row
    assert "on the target but /proc/cmdline: nc.one=1 is missing" in str(row["error"])
    assert (row["rolled_back"], row["rollback_verified"]) == (True, True)
    assert cmdline(broken) == before
    row = rows["host2"]
    assert (row["outcome"], row["failure"]) == ("failed", "kernel-arguments"), row
    assert "/usr/lib/bootc/kargs.d/99-local.toml on the host" in str(row["error"])
    assert (row["rolled_back"], row["rollback_verified"]) == (True, True)  # the staged one dropped
    assert bad_file.booted_digest() is None
