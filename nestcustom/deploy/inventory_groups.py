"""Ansible's group rules for an inventory's hosts, the INI and the YAML form alike.

A host is in the groups it is listed under, their parents (children:), and `all`; a
host listed under no group but `all` is in `ungrouped`. Its settings are `all`'s vars,
then every other group's by depth (a parent before its children; the same depth by
name), then its own, the last one written winning: Ansible's precedence
(docs.ansible.com "How variables are merged"; ansible_group_priority is not read). A
group may be defined in several places: its vars, children and hosts are merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nestcustom.errors import Location

Row = tuple[str, Location, dict[str, Any]]  # host name, where it was written, its settings


@dataclass
class Groups:
    """What an inventory file says, gathered as it is read."""

    first_at: dict[str, Location] = field(default_factory=dict)  # host -> where first listed
    direct: dict[str, set[str]] = field(default_factory=dict)  # host -> groups listing it
    own: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> its own vars
    vars: dict[str, dict[str, Any]] = field(default_factory=dict)  # group -> its vars
    parents: dict[str, set[str]] = field(default_factory=dict)  # group -> its parents

    def host(self, name: str, group: str, where: Location, values: dict[str, Any]) -> None:
        self.first_at.setdefault(name, where)
        self.direct.setdefault(name, set()).add(group)
        self.own.setdefault(name, {}).update(values)

    def group_vars(self, group: str, values: dict[str, Any]) -> None:
        self.vars.setdefault(group, {}).update(values)

    def child(self, parent: str, child: str) -> None:
        self.parents.setdefault(child, set()).add(parent)

    def rows(self) -> list[Row]:
        def ancestors(group: str, seen: frozenset[str] = frozenset()) -> set[str]:
            found = {group}
            for parent in self.parents.get(group, ()):
                if parent not in seen:
                    found |= ancestors(parent, seen | {group})
            return found

        def depth(group: str, seen: frozenset[str] = frozenset()) -> int:
            ups = [p for p in self.parents.get(group, ()) if p not in seen]
            return 1 + max((depth(p, seen | {group}) for p in ups), default=0)

        rows: list[Row] = []
        for host, where in self.first_at.items():
            # Listed under `ungrouped` and elsewhere: not in it; under a child of a group
            # named `ungrouped`: in it, as in any parent.
            listed = self.direct[host] - {"ungrouped"}
            member = set().union(*(ancestors(g) for g in listed)) - {"all"}
            shown = member - {"ungrouped"}
            row: dict[str, Any] = {"name": host, **self.vars.get("all", {})}
            for group in sorted(member if shown else {"ungrouped"}, key=lambda g: (depth(g), g)):
                row.update(self.vars.get(group, {}))
            row.update(self.own[host])
            row["groups"] = tuple(sorted(shown))
            row.setdefault("address", host)
            rows.append((host, where, row))
        return rows
