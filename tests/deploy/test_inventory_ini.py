"""Ansible INI inventories: read as Ansible merges them, checked by the inventory's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.deploy.inventory import Host, load_inventory
from nestcustom.errors import BadInputError

INI = """\
# the production fleet
bastion ansible_host=192.0.2.1 ansible_user=admin

[canary]
web1 ansible_host=192.0.2.10 ansible_port=2201
web[02:03].example.com

[db]
db1:2222 ansible_ssh_private_key_file=~/.ssh/db ansible_python_interpreter=/usr/bin/python3

[prod:children]
canary
db

[prod:vars]
ansible_user=core
ansible_become=true

[canary:vars]
ansible_user="nest"
"""


def write(tmp_path: Path, text: str, name: str = "hosts") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_hosts_groups_vars_and_children_as_ansible_merges_them(tmp_path: Path) -> None:
    path = write(tmp_path, INI)
    inventory = load_inventory(path)
    home = str(Path("~/.ssh/db").expanduser())
    assert inventory.hosts == (
        Host("bastion", "192.0.2.1", None, "admin", None, None, False, ()),
        Host("web1", "192.0.2.10", 2201, "nest", None, None, True, ("canary", "prod")),
        Host(
            "web02.example.com",
            "web02.example.com",
            None,
            "nest",
            None,
            None,
            True,
            ("canary", "prod"),
        ),
        Host(
            "web03.example.com",
            "web03.example.com",
            None,
            "nest",
            None,
            None,
            True,
            ("canary", "prod"),
        ),
        Host("db1", "db1", 2222, "core", home, None, True, ("db", "prod")),
    )
    assert inventory.warnings == (
        f"{path}:9:49: warning: ansible_python_interpreter is not used by nestcustom (it reads "
        "ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file and ansible_become)",
    )
    assert [h.name for h in inventory.select(("prod",))] == [
        "web1",
        "web02.example.com",
        "web03.example.com",
        "db1",
    ]


def test_an_ini_file_with_a_suffix_or_without_sections_is_read_as_ini(tmp_path: Path) -> None:
    path = write(tmp_path, "web1 ansible_host=192.0.2.10\n", "inventory.ini")
    assert load_inventory(path).hosts[0].address == "192.0.2.10"
    bare = write(tmp_path, "; a comment\nweb1:2200\n", "inventory")
    assert load_inventory(bare).hosts[0].port == 2200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "web1 ansible_password=hunter2\n",
            "hosts:1:6: 'ansible_password' holds a password: nestcustom never handles passwords",
        ),
        (
            "[all:vars]\nansible_become_pass=x\n[g]\nweb1\n",
            "hosts:2:1: 'ansible_become_pass' holds a password",
        ),
        (
            "web1 ansible_host=-oProxyCommand=touch\n",
            "hosts:1:6: ansible_host='-oProxyCommand=touch' is not a host name or IP address",
        ),
        ("web1 ansible_user=-x\n", "hosts:1:6: ansible_user='-x' is not a user name"),
        (
            "web1 ansible_port=http\n",
            "hosts:1:6: ansible_port='http': a port is a number between 1 and 65535",
        ),
        (
            "web1 ansible_become=maybe\n",
            "hosts:1:6: ansible_become='maybe': expected true or false",
        ),
        ("web1 stray\n", "hosts:1:6: 'stray' is not a KEY=VALUE variable of the host"),
        ("[web:hosts:x]\nweb1\n", "hosts:1:1: '[web:hosts:x]' is not a section header"),
        ("[g:weird]\nweb1\n", "hosts:1:1: '[g:weird]' is not a section header"),
        (
            "[g]\nweb1\n[nope:vars]\na=b\n",
            "hosts:3:1: [nope:vars] is for a group that is never defined",
        ),
        ("-oProxyCommand=x\n", "hosts:1:1: host name '-oProxyCommand=x' is not a valid name"),
        ("web[1:c]\n", "hosts:1:1: the range [1:c] mixes digits and letters"),
        ("# nothing yet\n[g]\n", "hosts:1:1: the inventory lists no host"),
        (
            "web1 ansible_host='unclosed\n",
            "hosts:1:1: cannot read this host line: No closing quotation",
        ),
    ],
)
def test_problems_are_located_and_refused_like_the_yaml_ones(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInputError) as caught:
        load_inventory(path)
    assert caught.value.message.replace(str(path), "hosts").startswith(expected)
    assert "hunter2" not in caught.value.message  # a password's value is never shown


def test_ungrouped_vars_reach_the_hosts_of_no_group(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lone ansible_host=192.0.2.9\n[web]\nweb1\n"
        "[ungrouped:vars]\nansible_user=core\nansible_port=2222\n",
    )
    found = {h.name: (h.user, h.port, h.groups) for h in load_inventory(path).hosts}
    assert found == {"lone": ("core", 2222, ()), "web1": (None, None, ("web",))}
    # a group named ungrouped with children is their parent like any other
    path = write(
        tmp_path, "[ungrouped:children]\nkids\n[kids]\nk1\n[ungrouped:vars]\nansible_user=core\n"
    )
    assert [(h.name, h.user) for h in load_inventory(path).hosts] == [("k1", "core")]
