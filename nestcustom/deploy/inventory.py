"""The inventory: which hosts, how to reach them, in which groups.

Three shapes are read: two YAML ones, checked against `inventory.schema.json` with every
problem located at FILE:LINE:COL:

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

and an Ansible INI inventory (inventory_ini.py), checked by the same rules.
Passwords are refused in any spelling: keys or an SSH agent only. Addresses
and users are restricted so that none can be read by ssh as an option.
"""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestcustom.deploy.inventory_groups import Groups, Row
from nestcustom.deploy.inventory_ini import (
    ANSIBLE_KEYS,
    PASSWORD_HINT,
    SECRET,
    is_ini,
    read_ini,
    unused_var,
)
from nestcustom.deploy.inventory_schema import locate, schema_problems
from nestcustom.errors import BadInputError, Location, Problem
from nestcustom.recipe.schema import format_path
from nestcustom.recipe.source import INVENTORY, YamlList, YamlMap, load_yaml

_ANSIBLE = ANSIBLE_KEYS
_SECRET = SECRET


@dataclass(frozen=True)
class Host:
    name: str
    address: str  # a DNS name, an ssh_config alias, or an IP address (IPv6 without brackets)
    port: int | None = None  # None: what ssh_config says (else 22)
    user: str | None = None  # None: what ssh_config says (else the local login name)
    key: str | None = None
    known_hosts: str | None = None
    sudo: bool = False
    groups: tuple[str, ...] = ()
    ssh_config: str | None = None  # ssh -F FILE; None: ~/.ssh/config


@dataclass(frozen=True)
class Inventory:
    hosts: tuple[Host, ...]
    warnings: tuple[str, ...] = ()

    def select(self, names: tuple[str, ...]) -> tuple[Host, ...]:
        """Hosts named, or in the groups named (exact names); every host when none are named."""
        if not names:
            return self.hosts
        hosts = {h.name for h in self.hosts}
        groups = {g for h in self.hosts for g in h.groups}
        unknown = [n for n in names if n not in hosts and n not in groups]
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(hosts | groups), n=1)
            raise BadInputError(
                f"no host or group named {', '.join(unknown)} in the inventory",
                f"did you mean {close[0]!r}?" if close else "names must match exactly",
            )
        wanted = set(names)
        return tuple(h for h in self.hosts if h.name in wanted or wanted & set(h.groups))


def load_inventory(path: Path) -> Inventory:
    """Read and check an inventory (YAML, or an Ansible INI inventory); every problem at once,
    located, as one BadInputError."""
    if is_ini(path):
        rows, problems, ini_warnings = read_ini(path)
        return _checked(rows, problems, ini_warnings)
    doc, problems = load_yaml(path, kind=INVENTORY)
    fallback = Location(str(path), 1, 1)
    if doc is not None and not isinstance(doc, YamlMap):
        problems.append(
            Problem(fallback, "", "an inventory is a mapping with hosts: (or Ansible groups)")
        )
    if problems or not isinstance(doc, YamlMap):
        raise _invalid(problems)
    problems = _secrets(doc, fallback)
    own = isinstance(doc.get("hosts"), list)
    said = {p.location for p in problems}  # a password key is not also an "unknown key"
    problems += [
        p
        for p in schema_problems(doc, "own" if own else "ansible", fallback)
        if p.location not in said
    ]
    if problems:
        raise _invalid(problems)
    warnings: list[str] = []
    rows = _own_rows(doc, fallback, problems) if own else _ansible_rows(doc, fallback, warnings)
    return _checked(rows, problems, warnings)


def _checked(rows: list[Row], problems: list[Problem], warnings: list[str]) -> Inventory:
    """Hosts from rows: each once, each address usable; or every problem, located."""
    seen: dict[str, Location] = {}
    for name, at, _ in rows:
        if name in seen:
            first = seen[name]
            problems.append(
                Problem(
                    at,
                    "",
                    f"host {name!r} is listed twice (first at line {first.line})",
                    "list each host once; put it in several groups instead",
                )
            )
        seen.setdefault(name, at)
    for name, at, row in rows:
        address, problem = normal_address(str(row.get("address", name)))
        if problem:
            problems.append(Problem(at, "", f"host {name!r}: {problem}", ADDRESS_HINT))
        row["address"] = address
    if problems:
        raise _invalid(problems)
    return Inventory(tuple(_host(row) for _, _, row in rows), tuple(warnings))


def _invalid(problems: list[Problem]) -> BadInputError:
    text = "\n".join(p.format() for p in problems)
    count = len(problems)
    return BadInputError(f"{text}\n{count} problem{'s' if count != 1 else ''} in the inventory")


def _secrets(node: Any, fallback: Location, path: tuple[str | int, ...] = ()) -> list[Problem]:
    """A key that holds a password, anywhere, in any spelling. Its value is never shown."""
    found: list[Problem] = []
    if isinstance(node, YamlMap):
        for key, value in node.items():
            if _SECRET.search(key.lower().replace("-", "_")):
                found.append(
                    Problem(
                        (node.key_origin(key) or node.origin).location,
                        format_path((*path, key)),
                        f"{key!r} holds a password: nestcustom never handles passwords",
                        PASSWORD_HINT,
                    )
                )
            else:
                found += _secrets(value, fallback, (*path, key))
    elif isinstance(node, YamlList):
        for index, item in enumerate(node):
            found += _secrets(item, fallback, (*path, index))
    return found


def _own_rows(doc: YamlMap, fallback: Location, problems: list[Problem]) -> list[Row]:
    defaults = dict(doc.get("defaults") or {})
    names = {entry["name"] for entry in doc["hosts"]}
    groups: dict[str, set[str]] = {}
    for group, members in (doc.get("groups") or {}).items():
        for index, member in enumerate(members):
            if member not in names:
                close = difflib.get_close_matches(member, sorted(names), n=1)
                problems.append(
                    Problem(
                        locate(doc, ("groups", group, index), fallback),
                        format_path(("groups", group, index)),
                        f"group {group!r} names {member!r}, which is not a host of this inventory",
                        f"did you mean {close[0]!r}?"
                        if close
                        else "groups list host names exactly",
                    )
                )
            groups.setdefault(member, set()).add(group)
    rows = []
    for index, entry in enumerate(doc["hosts"]):
        row = {**defaults, **entry, "groups": tuple(sorted(groups.get(entry["name"], ())))}
        rows.append((entry["name"], locate(doc, ("hosts", index), fallback), row))
    return rows


def _ansible_rows(doc: YamlMap, fallback: Location, warnings: list[str]) -> list[Row]:
    groups = Groups()

    def walk(group: str, node: Any, path: tuple[str, ...]) -> None:
        node = node or {}
        groups.group_vars(group, _vars(node.get("vars"), (*path, "vars")))
        for name, host_vars in (node.get("hosts") or {}).items():
            at = locate(doc, (*path, "hosts", name), fallback, key=True)
            groups.host(name, group, at, _vars(host_vars, (*path, "hosts", name)))
        for child, sub in (node.get("children") or {}).items():
            groups.child(group, child)
            walk(child, sub, (*path, "children", child))

    def _vars(node: Any, path: tuple[str, ...]) -> dict[str, Any]:
        out = {}
        for key, value in (node or {}).items():
            if key in _ANSIBLE:
                out[_ANSIBLE[key]] = value
            elif why := unused_var(key):
                warnings.append(f"{locate(doc, (*path, key), fallback, key=True)}: warning: {why}")
        return out

    for group, node in doc.items():
        walk(group, node, (group,))
    return groups.rows()


def _host(row: dict[str, Any]) -> Host:
    key, known, config = row.get("key"), row.get("known_hosts"), row.get("ssh_config")
    return Host(
        name=row["name"],
        address=row.get("address", row["name"]),
        port=row.get("port"),
        user=row.get("user"),
        key=str(Path(key).expanduser()) if key else None,
        known_hosts=str(Path(known).expanduser()) if known else None,
        sudo=row.get("sudo", False),
        groups=tuple(row.get("groups", ())),
        ssh_config=str(Path(config).expanduser()) if config else None,
    )


ADDRESS_HINT = (
    "write a DNS name, an ssh_config alias, an IPv4 address or an IPv6 address "
    "([2001:db8::1] or 2001:db8::1); put the port in port: (ansible_port:)"
)


def normal_address(address: str) -> tuple[str, str | None]:
    """(the address as ssh and sockets take it, why it is unusable or None). An IPv6 literal
    loses its brackets (ssh and the known_hosts lookup want it bare); a text with a colon
    that is no IPv6 address, such as HOST:PORT, is refused here, not at the first ssh."""
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    if bare == address and not any(c in address for c in ":[]%"):
        return address, None
    try:
        ipaddress.IPv6Address(bare)
    except ValueError:
        return address, f"{address!r} is not a host name or an IP address"
    return bare, None
