"""The inventory: both shapes, exact groups, and every bad input located with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nestcustom.deploy.inventory import load_inventory
from nestcustom.errors import BadInputError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(BadInputError) as caught:
        load_inventory(path)
    return caught.value.message.replace(str(path), "hosts.yaml")


def test_own_format(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "defaults: {user: core, key: ~/.ssh/id_ed25519}\n"
            "hosts:\n  - {name: web1, address: 192.0.2.10}\n"
            "  - {name: web2, address: 192.0.2.11, port: 2222, user: root}\n"
            "groups: {canary: [web1], rest: [web2]}\n",
        )
    )
    web1, web2 = inventory.hosts
    # A port left out is left to ssh_config (ssh -p only where the inventory sets one).
    assert (web1.user, web1.port, web1.groups) == ("core", None, ("canary",))
    assert (web2.user, web2.port) == ("root", 2222)
    assert web1.key is not None and not web1.key.startswith("~")
    assert [h.name for h in inventory.select(("rest",))] == ["web2"]
    assert [h.name for h in inventory.select(("web2", "canary"))] == ["web1", "web2"]
    with pytest.raises(BadInputError, match="no host or group named web") as caught:
        inventory.select(("web",))  # a prefix of both hosts selects neither
    assert str(caught.value.hint).startswith("did you mean 'web")


def test_ansible_subset_and_unknown_vars_warned(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "all:\n  vars: {ansible_user: core, ansible_python_interpreter: /usr/bin/python3}\n"
        "  children:\n"
        "    canary:\n      hosts:\n        web1: {ansible_host: 192.0.2.10, ansible_port: 2201}\n"
        "    rest:\n      vars: {ansible_become: true}\n      hosts:\n"
        "        web2: {ansible_host: 192.0.2.11}\n        web3:\n",
    )
    inventory = load_inventory(path)
    web1, web2, web3 = inventory.hosts
    assert (web1.address, web1.port, web1.user, web1.groups) == (
        "192.0.2.10",
        2201,
        "core",
        ("canary",),
    )
    assert (web2.address, web2.sudo, web2.groups) == ("192.0.2.11", True, ("rest",))
    assert (web3.address, web3.user) == ("web3", "core")
    assert inventory.warnings == (
        f"{path}:2:30: warning: ansible_python_interpreter is not used by nestcustom (it reads "
        "ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file and ansible_become)",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "hosts:\n  - {name: a, port: x}\n",
            "hosts.yaml:2:21: hosts[0].port: expected a whole number, got the text 'x'",
        ),
        (
            "hosts:\n  - {name: a, port: true}\n",
            "hosts.yaml:2:21: hosts[0].port: expected a whole number, got the boolean true",
        ),
        (
            "hosts:\n  - {name: a, port: 70000}\n",
            "hosts.yaml:2:21: hosts[0].port: 70000 is out of range\n  hint: a port is between 1 and 65535",
        ),
        (
            "hosts:\n  - {name: null}\n",
            "hosts.yaml:2:12: hosts[0].name: 'null' was read as null (no value), but text is expected",
        ),
        (
            "hosts:\n  - {name: web1}\ngroups: {canary: web1x}\n",
            "hosts.yaml:3:18: groups.canary: expected a list, got the text 'web1x'",
        ),
        (
            "hosts:\n  - {name: web1}\ngroups: {canary: [web1x]}\n",
            "hosts.yaml:3:19: groups.canary[0]: group 'canary' names 'web1x', which is not a host "
            "of this inventory\n  hint: did you mean 'web1'?",
        ),
        (
            "hosts:\n  - {name: a, address: -oProxyCommand=touch /tmp/x}\n",
            "hosts.yaml:2:24: hosts[0].address: '-oProxyCommand=touch /tmp/x' is not a host name or IP address",
        ),
        (
            "hosts:\n  - {name: a, user: -oProxyCommand=x}\n",
            "hosts.yaml:2:21: hosts[0].user: '-oProxyCommand=x' is not a user name",
        ),
        (
            "all:\n  hosts:\n    a: {ansible_host: -oProxyCommand=x}\n",
            "hosts.yaml:3:23: all.hosts.a.ansible_host: '-oProxyCommand=x' is not a host name",
        ),
        (
            "hosts:\n  - {name: a}\n  - {name: a}\n",
            "hosts.yaml:3:5: host 'a' is listed twice (first at line 2)",
        ),
        ("hosts: []\n", "hosts.yaml:1:8: hosts: is empty"),
        (
            "hosts:\n  - {name: a, adress: x}\n",
            "unknown key 'adress'\n  hint: did you mean 'address'?",
        ),
        ("hosts: [\n", "hosts.yaml:2:1: not valid YAML"),
        (
            "# no hosts yet\n",
            "hosts.yaml:1:1: the file is empty\n"
            "  hint: an inventory needs hosts: (or Ansible groups with hosts)",
        ),
        ("- a\n", "hosts.yaml:1:1: an inventory is a mapping"),
    ],
)
def test_bad_input_is_located(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problems(tmp_path, text)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_pass",
        "ansible_become_password",
        "ansible_sudo_pass",
        "sudo-passwd",
        "key_passphrase",
    ],
)
def test_passwords_refused_in_any_spelling(tmp_path: Path, key: str) -> None:
    own = problems(tmp_path, f"hosts:\n  - {{name: a, {key}: hunter2}}\n")
    assert f"hosts.yaml:2:15: hosts[0].{key}: {key!r} holds a password" in own.replace(
        '["', "."
    ).replace('"]', "")
    ansible = problems(tmp_path, f"all:\n  vars:\n    {key}: hunter2\n  hosts: {{a: }}\n")
    assert "hosts.yaml:3:5:" in ansible and "never handles passwords" in ansible
    assert "hunter2" not in own + ansible
    assert "unknown key" not in own  # the password is the problem, said once


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    text = "hosts:\n  - {name: a}\n" + "\n".join(f"x{line}" for line in lines) + "\n"
    assert "more than 100000 values (aliases expanding?)" in problems(tmp_path, text)


def test_cli_exit_2_located_never_internal_error(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts:\n  - {name: a, port: x, password: hunter2}\n")
    for command in (["status"], ["rollback"], ["deploy", "127.0.0.1:5000/x/y:1"]):
        done = subprocess.run(
            [sys.executable, "-m", "nestcustom", *command, "-i", str(path)],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        assert f"{path}:2:21: hosts[0].port: expected a whole number" in done.stderr
        assert f"{path}:2:24: hosts[0].password: 'password' holds a password" in done.stderr
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr
        assert "hunter2" not in done.stderr


def test_every_host_field_and_its_default(tmp_path: Path) -> None:
    from nestcustom.deploy.inventory import Host

    inventory = load_inventory(
        write(
            tmp_path,
            "defaults: {known_hosts: /etc/kh, sudo: true}\n"
            "hosts:\n  - {name: a}\n"
            "  - {name: b, address: 10.0.0.2, port: 2200, user: core, key: /k, known_hosts: /kh2, sudo: false}\n"
            "groups: {g: [b]}\n",
        )
    )
    assert inventory.hosts == (
        Host("a", "a", None, None, None, "/etc/kh", True, ()),
        Host("b", "10.0.0.2", 2200, "core", "/k", "/kh2", False, ("g",)),
    )
    ansible = load_inventory(
        write(
            tmp_path,
            "all:\n  hosts:\n    top:\n  children:\n    g:\n      children:\n        sub:\n"
            "          hosts:\n            deep: {ansible_ssh_private_key_file: /k}\n",
        )
    )
    assert ansible.hosts == (
        Host("top", "top", None, None, None, None, False, ()),
        Host("deep", "deep", None, None, "/k", None, False, ("g", "sub")),  # g's child's host
    )
    assert ansible.warnings == ()


def test_whole_messages_of_the_rarer_problems(tmp_path: Path) -> None:
    assert problems(tmp_path, "hosts:\n  - {name: a}\n  - {name: a}\n") == (
        "hosts.yaml:3:5: host 'a' is listed twice (first at line 2)\n"
        "  hint: list each host once; put it in several groups instead\n"
        "1 problem in the inventory"
    )
    assert problems(tmp_path, "hosts:\n  - {name: zzz}\ngroups: {g: [qqq], h: [zzz]}\n") == (
        "hosts.yaml:3:14: groups.g[0]: group 'g' names 'qqq', which is not a host of this inventory\n"
        "  hint: groups list host names exactly\n"
        "1 problem in the inventory"
    )
    assert problems(tmp_path, "- a\n") == (
        "hosts.yaml:1:1: an inventory is a mapping with hosts: (or Ansible groups)\n"
        "1 problem in the inventory"
    )
    two = problems(tmp_path, "hosts:\n  - {name: a, port: x}\n  - {name: b, user: '-x'}\n")
    assert two.endswith("\n2 problems in the inventory") and two.count("\n  hint:") == 1
    listed = problems(tmp_path, "hosts:\n  - {name: a}\n  - [{password: x}]\n")
    assert "hosts.yaml:3:7: hosts[1][0].password: 'password' holds a password" in listed
    assert (
        "  hint: remove it; use an SSH key (key: or ansible_ssh_private_key_file:) or an SSH agent, "
        "and passwordless sudo"
    ) in listed
    nested = problems(
        tmp_path, "all:\n  children:\n    g:\n      hosts:\n        h: {ansible_become_pass: x}\n"
    )
    assert nested.startswith("hosts.yaml:5:13: all.children.g.hosts.h.ansible_become_pass:")


def test_selection_errors_name_every_unknown(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, "hosts:\n  - {name: alpha}\n  - {name: beta}\n"))
    with pytest.raises(BadInputError) as caught:
        inventory.select(("qqq", "zzz", "alpha"))
    assert caught.value.message == "no host or group named qqq, zzz in the inventory"
    assert caught.value.hint == "names must match exactly"
    with pytest.raises(BadInputError) as caught:
        inventory.select(("alphx", "betx"))
    assert caught.value.hint == "did you mean 'alpha'?"


def test_every_problem_is_its_own_located_line(tmp_path: Path) -> None:
    assert problems(tmp_path, "hosts:\n  - {name: a, port: x}\n  - {name: b, user: '-x'}\n") == (
        "hosts.yaml:2:21: hosts[0].port: expected a whole number, got the text 'x'\n"
        "hosts.yaml:3:21: hosts[1].user: '-x' is not a user name\n"
        "  hint: a login name such as core or root; it may not start with '-' (ssh would read it "
        "as an option)\n"
        "2 problems in the inventory"
    )


def test_a_password_on_the_first_of_several_hosts_is_refused_as_one(tmp_path: Path) -> None:
    said = problems(tmp_path, "hosts:\n  - {name: a, password: x}\n  - {name: b}\n")
    assert said.startswith(
        "hosts.yaml:2:15: hosts[0].password: 'password' holds a password: "
        "nestcustom never handles passwords\n"
    )
    assert said.endswith("\n1 problem in the inventory")


def test_a_yaml_problem_in_a_mapping_inventory_stops_the_load(tmp_path: Path) -> None:
    assert problems(tmp_path, "hosts:\n  - {name: a}\nhosts:\n  - {name: b}\n") == (
        "hosts.yaml:3:1: duplicate key 'hosts' (first at line 1, column 1)\n"
        "  hint: YAML keeps only the last of duplicate keys; remove one of them\n"
        "1 problem in the inventory"
    )


def test_unused_ansible_vars_of_hosts_and_child_groups_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "all:\n  hosts:\n    h1: {ansible_connection: ssh}\n  children:\n    g:\n"
        "      vars: {ansible_shell_type: sh}\n      hosts: {h2: }\n",
    )
    inventory = load_inventory(path)
    assert [w.split(" is not used")[0] for w in inventory.warnings] == [
        f"{path}:3:10: warning: ansible_connection",
        f"{path}:6:14: warning: ansible_shell_type",
    ]
    assert [(h.name, h.groups) for h in inventory.hosts] == [("h1", ()), ("h2", ("g",))]


def test_ansible_yaml_merges_vars_as_ansible_does(tmp_path: Path) -> None:
    """all's vars, then groups parent before child, then the host's own, wherever each is
    written: a group defined twice merges, and a host listed twice keeps its own vars."""
    inventory = load_inventory(
        write(
            tmp_path,
            "all:\n"
            "  vars: {ansible_user: core, ansible_port: 22}\n"
            "  hosts:\n    web1: {ansible_user: admin}\n"
            "  children:\n"
            "    prod:\n      vars: {ansible_port: 2200}\n"
            "      children:\n        canary:\n          hosts: {web1: , web2: }\n"
            "    db:\n      hosts:\n        web2: {ansible_port: 2222}\n"
            "canary:\n  vars: {ansible_ssh_private_key_file: /k/canary}\n"
            "web:\n  hosts: {web3: }\n",
        )
    )
    found = {h.name: (h.user, h.port, h.key, h.groups) for h in inventory.hosts}
    assert found == {
        # its own user over all's, though a group lists it after; prod's port over all's
        "web1": ("admin", 2200, "/k/canary", ("canary", "prod")),
        # its own port (written under db) over prod's; canary's key from its second block
        "web2": ("core", 2222, "/k/canary", ("canary", "db", "prod")),
        # a top-level group beside all still gets all's vars
        "web3": ("core", 22, None, ("web",)),
    }


def test_own_form_keys_in_an_ansible_inventory_are_named_not_silently_dropped(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "all:\n  vars: {known_hosts: /kh, sudo: true}\n  hosts:\n    h1: {port: 2222}\n",
    )
    inventory = load_inventory(path)
    assert inventory.warnings == (
        f"{path}:2:10: warning: known_hosts is a key of nestcustom's own inventory form, not "
        "read in an Ansible inventory (if it is meant for nestcustom, use nestcustom's form)",
        f"{path}:2:28: warning: sudo is a key of nestcustom's own inventory form, not read in an "
        "Ansible inventory (if it is meant for nestcustom, write ansible_become)",
        f"{path}:4:10: warning: port is a key of nestcustom's own inventory form, not read in an "
        "Ansible inventory (if it is meant for nestcustom, write ansible_port)",
    )
    assert (inventory.hosts[0].port, inventory.hosts[0].sudo) == (None, False)
    ini = tmp_path / "hosts.ini"
    ini.write_text("[web]\nweb1 port=22 ansible_user=core\n")
    assert load_inventory(ini).warnings == (
        f"{ini}:2:6: warning: port is a key of nestcustom's own inventory form, not read in an "
        "Ansible inventory (if it is meant for nestcustom, write ansible_port)",
    )
