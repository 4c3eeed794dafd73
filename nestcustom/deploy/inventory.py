"""The inventory: which hosts, how to reach them, in which groups.

Two shapes are read:

    # nestcustom's own
    defaults: {user: core, key: ~/.ssh/id_ed25519, sudo: true}
    hosts:
      - {name: web1, address: 192.0.2.10}
      - {name: web2, address: 192.0.2.11, port: 2222}
    groups: {canary: [web1], rest: [web2]}

    # the hosts and vars of an Ansible YAML inventory
    all:
      vars: {ansible_user: core}
      children:
        canary: {hosts: {web1: {ansible_host: 192.0.2.10}}}

Passwords are refused: keys or an SSH agent only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nestcustom.errors import BadInputError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOST_KEYS = {"name", "address", "port", "user", "key", "known_hosts", "sudo"}
_ANSIBLE = {
    "ansible_host": "address",
    "ansible_port": "port",
    "ansible_user": "user",
    "ansible_ssh_private_key_file": "key",
    "ansible_become": "sudo",
}
_SECRET_KEYS = {"password", "ansible_password", "ansible_ssh_pass", "ansible_become_password"}


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key: str | None = None
    known_hosts: str | None = None
    sudo: bool = False
    groups: tuple[str, ...] = ()

    @property
    def needs_sudo(self) -> bool:
        return self.sudo or self.user != "root"


@dataclass(frozen=True)
class Inventory:
    hosts: tuple[Host, ...]

    def select(self, names: tuple[str, ...]) -> tuple[Host, ...]:
        """Hosts named, or in the groups named; every host when none are named."""
        if not names:
            return self.hosts
        chosen = [h for h in self.hosts if h.name in names or set(h.groups) & set(names)]
        known = {h.name for h in self.hosts} | {g for h in self.hosts for g in h.groups}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadInputError(f"no host or group named {', '.join(unknown)} in the inventory")
        return tuple(chosen)


def load_inventory(path: Path) -> Inventory:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the inventory: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise BadInputError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: an inventory is a mapping with hosts: (or an Ansible all:)")
    _refuse_secrets(path, data)
    rows = _ansible_rows(data) if "all" in data else _own_rows(path, data)
    hosts = []
    for row in rows:
        hosts.append(_host(path, row))
    names = [h.name for h in hosts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadInputError(f"{path}: hosts listed twice: {', '.join(duplicates)}")
    if not hosts:
        raise BadInputError(f"{path}: the inventory lists no hosts")
    return Inventory(tuple(hosts))


def _refuse_secrets(path: Path, node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SECRET_KEYS:
                raise BadInputError(
                    f"{path}: '{key}' is not supported: nestcustom never handles passwords",
                    "use an SSH key (key: or ansible_ssh_private_key_file:) or an SSH agent",
                )
            _refuse_secrets(path, value)
    elif isinstance(node, list):
        for item in node:
            _refuse_secrets(path, item)


def _own_rows(path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    unknown = set(data) - {"defaults", "hosts", "groups"}
    if unknown:
        raise BadInputError(f"{path}: unknown top-level keys: {', '.join(sorted(unknown))}")
    defaults = data.get("defaults") or {}
    groups: dict[str, list[str]] = data.get("groups") or {}
    rows = []
    for entry in data.get("hosts") or []:
        if not isinstance(entry, dict) or "name" not in entry:
            raise BadInputError(f"{path}: every host needs at least a name (and an address)")
        row = {**defaults, **entry}
        row["groups"] = tuple(
            sorted(g for g, members in groups.items() if entry["name"] in members)
        )
        rows.append(row)
    return rows


def _ansible_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}

    def walk(group: str, node: dict[str, Any] | None, inherited: dict[str, Any]) -> None:
        node = node or {}
        values = {**inherited, **(node.get("vars") or {})}
        for name, host_vars in (node.get("hosts") or {}).items():
            row = rows.setdefault(str(name), {"name": str(name), "groups": ()})
            merged = {**values, **(host_vars or {})}
            for key, value in merged.items():
                if key in _ANSIBLE:
                    row[_ANSIBLE[key]] = value
            if group != "all":
                row["groups"] = tuple(sorted({*row["groups"], group}))
        for child, sub in (node.get("children") or {}).items():
            walk(str(child), sub, values)

    walk("all", data["all"], {})
    for row in rows.values():
        row.setdefault("address", row["name"])
    return list(rows.values())


def _host(path: Path, row: dict[str, Any]) -> Host:
    name = str(row["name"])
    if not _NAME.match(name):
        raise BadInputError(f"{path}: {name!r} is not a valid host name")
    unknown = set(row) - _HOST_KEYS - {"groups"}
    if unknown:
        raise BadInputError(f"{path}: host {name}: unknown keys {', '.join(sorted(unknown))}")
    try:
        port = int(row.get("port", 22))
    except (TypeError, ValueError):
        raise BadInputError(f"{path}: host {name}: port must be a number") from None
    if not 0 < port < 65536:
        raise BadInputError(f"{path}: host {name}: port {port} is out of range")
    key = row.get("key")
    known = row.get("known_hosts")
    return Host(
        name=name,
        address=str(row.get("address", name)),
        port=port,
        user=str(row.get("user", "root")),
        key=str(Path(str(key)).expanduser()) if key else None,
        known_hosts=str(Path(str(known)).expanduser()) if known else None,
        sudo=bool(row.get("sudo", False)),
        groups=tuple(row.get("groups", ())),
    )
