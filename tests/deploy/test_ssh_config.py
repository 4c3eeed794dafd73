"""SSH as users configure it: ssh_config aliases decide what the inventory leaves out;
IPv6 literals are taken or refused at load, located; ssh never prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.deploy.inventory import Host, load_inventory
from nestcustom.deploy.ssh import Connection, Endpoint, SshOptions
from nestcustom.errors import BadInputError

OPTIONS = SshOptions(Path("/tmp/nc-test-control"))


def test_port_and_user_are_passed_only_where_the_inventory_sets_them() -> None:
    alias = Connection(Host("web", "web"), OPTIONS).ssh_argv()
    assert "-p" not in alias and "-l" not in alias  # the alias's Port and User decide
    assert alias[-2:] == ["--", "web"]
    pinned = Connection(Host("web", "web", 2222, "core"), OPTIONS).ssh_argv()
    assert pinned[1:5] == ["-p", "2222", "-l", "core"]


def test_ssh_never_prompts() -> None:
    argv = Connection(Host("web", "web"), OPTIONS).ssh_argv()
    assert argv[argv.index("BatchMode=yes") - 1] == "-o"
    assert "StrictHostKeyChecking=yes" in argv


def test_an_ssh_config_alias_is_resolved_as_ssh_would(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host web\n  HostName 192.0.2.7\n  Port 2222\n  User core\n  ProxyJump jump.example\n"
        "Host db\n  HostName 192.0.2.8\n"
    )
    web = Connection(Host("web", "web", ssh_config=str(config)), OPTIONS)
    assert web.ssh_argv()[1:3] == ["-F", str(config)]
    assert web.endpoint() == Endpoint("192.0.2.7", 2222, "core", proxied=True)
    assert web.needs_sudo  # core, from the config
    db = Connection(Host("db", "db", user="root", ssh_config=str(config)), OPTIONS)
    assert db.endpoint() == Endpoint("192.0.2.8", 22, "root", proxied=False)
    assert not db.needs_sudo


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("'[::1]'", "::1"),
        ("'::1'", "::1"),
        ("'[2001:db8::7]'", "2001:db8::7"),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_ipv6_literals_are_accepted_bare(tmp_path: Path, written: str, address: str) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(f"hosts:\n  - {{name: a, address: {written}, port: 2222}}\n")
    assert load_inventory(path).hosts[0].address == address


@pytest.mark.parametrize("written", ["192.0.2.1:22", "'[::1]:22'", "'[web]'", "'::zz'"])
def test_what_is_no_address_is_refused_at_load_located(tmp_path: Path, written: str) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(f"hosts:\n  - {{name: a, address: {written}}}\n")
    with pytest.raises(BadInputError) as caught:
        load_inventory(path)
    assert caught.value.message.startswith(f"{path}:2:5: host 'a': ")
    assert "is not a host name or an IP address" in caught.value.message
    assert "put the port in port:" in caught.value.message
