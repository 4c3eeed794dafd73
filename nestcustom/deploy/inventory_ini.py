"""Ansible INI inventories, as most Ansible users keep them, read into inventory rows.

    web1 ansible_host=192.0.2.10 ansible_port=2222
    [canary]
    web[2:3].example.com
    [canary:vars]
    ansible_user=core
    [prod:children]
    canary

Hosts (with `KEY=VALUE` variables on the line, `NAME:PORT`, and numeric or letter
ranges `[01:20]`, `[a:f]`), `[group]`, `[group:vars]`, `[group:children]`.
A host's variables are those of `all`, then of its groups from the outermost
parent to the innermost (alphabetically among equals), then its own lines, as
Ansible merges them. nestcustom reads ansible_host, ansible_port, ansible_user,
ansible_ssh_private_key_file, ansible_become (and the older ansible_ssh_*
spellings); every value is checked against the inventory schema's rules, every
problem located at FILE:LINE:COL, and a password in any spelling is refused.
"""

from __future__ import annotations

import re
import shlex
import string
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from nestcustom.deploy.inventory_groups import Groups, Row
from nestcustom.deploy.inventory_schema import inventory_schema
from nestcustom.errors import Location, Problem

ANSIBLE_KEYS = {
    "ansible_host": "address",
    "ansible_port": "port",
    "ansible_user": "user",
    "ansible_ssh_private_key_file": "key",
    "ansible_become": "sudo",
    # the spellings of Ansible before 2.0, still read by it
    "ansible_ssh_host": "address",
    "ansible_ssh_port": "port",
    "ansible_ssh_user": "user",
    "ansible_private_key_file": "key",
}
_NATIVE = {"address": "ansible_host", "port": "ansible_port", "user": "ansible_user",
           "key": "ansible_ssh_private_key_file", "sudo": "ansible_become",
           "known_hosts": None, "ssh_config": None}  # fmt: skip


def unused_var(key: str) -> str | None:
    """Why an Ansible inventory's var `key` does nothing here (None: nothing to say)."""
    if key in _NATIVE:
        spelled = _NATIVE[key]
        return f"{key} is a key of nestcustom's own inventory form, not read in an Ansible " + (
            f"inventory (if it is meant for nestcustom, write {spelled})"
            if spelled
            else "inventory (if it is meant for nestcustom, use nestcustom's form)"
        )
    if key.startswith("ansible_") and key not in ANSIBLE_KEYS:
        return (
            f"{key} is not used by nestcustom (it reads ansible_host, ansible_port, "
            "ansible_user, ansible_ssh_private_key_file and ansible_become)"
        )
    return None


# password, passwd, pass, passphrase as a word of the key: ansible_become_pass, PASSWORD, ...
SECRET = re.compile(r"(^|_)(pass|passwd|password|passphrase)($|_)|password")
PASSWORD_HINT = (
    "remove it; use an SSH key (key: or ansible_ssh_private_key_file:) "  # noqa: S105 - a hint
    "or an SSH agent, and passwordless sudo"
)
_SECTION = re.compile(r"^\[([^\]:\s]+)(?::([a-z]+))?\]\s*(?:[#;].*)?$")
_YAML_KEY = re.compile(r"^[\w.-]+:(\s|$)")
_RANGE = re.compile(r"\[([0-9]+|[a-z]):([0-9]+|[a-z])\]")
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def is_ini(path: Path) -> bool:
    """Whether `path` holds an INI inventory: by its suffix, else by its first line that is
    not blank or a comment (a `[section]`, or a host line: not a YAML `key:`)."""
    if path.suffix in (".ini", ".cfg"):
        return True
    if path.suffix in (".yaml", ".yml", ".json"):
        return False
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return False  # the YAML reader says what is wrong with it
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        # A [section] (a YAML inventory is never a list) or a host line: not YAML's marks.
        return not (line.startswith(("---", "{", "%")) or _YAML_KEY.match(line))
    return False


@cache
def _validator(rule: str) -> Draft202012Validator:
    root = inventory_schema()
    return Draft202012Validator({"$ref": f"#/$defs/{rule}", "$defs": root["$defs"]})


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.hosts: dict[str, list[tuple[str, Location, dict[str, Any]]]] = {}  # group -> lines
        self.vars: dict[str, dict[str, Any]] = {}
        self.var_lines: list[tuple[str, Location]] = []  # [group:vars] sections, to check
        self.children: dict[str, list[str]] = {}
        self.defined: set[str] = {"all", "ungrouped"}
        self.first_at: dict[str, Location] = {}

    def at(self, line: int, column: int = 1) -> Location:
        return Location(str(self.path), line, column)

    def problem(self, where: Location, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(where, "", message, hint))

    def read(self, text: str) -> None:
        group, kind = "ungrouped", "hosts"
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            column = len(raw) - len(raw.lstrip()) + 1
            if line.startswith("["):
                section = _SECTION.match(line)
                if not section or (section.group(2) or "hosts") not in (
                    "hosts",
                    "vars",
                    "children",
                ):
                    self.problem(
                        self.at(number, column),
                        f"{line!r} is not a section header",
                        "write [GROUP], [GROUP:vars] or [GROUP:children]",
                    )
                    group, kind = "", "skip"
                    continue
                group, kind = section.group(1), section.group(2) or "hosts"
                self._check_name(group, self.at(number, column + 1), "group")
                if kind == "vars":
                    self.var_lines.append((group, self.at(number, column)))
                else:
                    self.defined.add(group)
                continue
            if kind == "hosts":
                self._host_line(group, raw, number)
            elif kind == "vars":
                self._var_line(group, raw, number, column)
            elif kind == "children":
                self._check_name(line, self.at(number, column), "group")
                self.children.setdefault(group, []).append(line)
                self.defined.add(line)
        for group, where in self.var_lines:
            if group not in self.defined:
                self.problem(
                    where,
                    f"[{group}:vars] is for a group that is never defined",
                    f"add a [{group}] section (or list it under a [PARENT:children])",
                )

    def _check_name(self, name: str, where: Location, what: str) -> bool:
        rule = inventory_schema()["$defs"]["name"]
        if _validator("name").is_valid(name):
            return True
        hint = rule["x-hint"]
        if what == "host" and ":" in name:
            hint = "for an IPv6 address, name the host and set ansible_host=ADDRESS"
        self.problem(where, f"{what} name {name!r} {rule['x-message']}", hint)
        return False

    def _host_line(self, group: str, raw: str, number: int) -> None:
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            self.problem(self.at(number), f"cannot read this host line: {exc}")
            return
        if not words:
            return
        pattern, settings = words[0], {}
        start = raw.find(pattern) + 1
        name, _, port = (
            pattern.rpartition(":")
            if _RANGE.sub("", pattern).count(":") == 1
            else (pattern, "", "")
        )
        if port:
            settings["ansible_port"] = (port, self.at(number, start + len(name) + 1))
        for word in words[1:]:
            key, equals, value = word.partition("=")
            where = self.at(number, raw.find(word) + 1)
            if not equals:
                self.problem(where, f"{word!r} is not a KEY=VALUE variable of the host")
                continue
            settings[key] = (value, where)
        values = self._values(settings)
        for host in self._expand(name, self.at(number, start)):
            if self._check_name(host, self.at(number, start), "host"):
                self.hosts.setdefault(group, []).append((host, self.at(number, start), values))
                self.first_at.setdefault(host, self.at(number, start))

    def _var_line(self, group: str, raw: str, number: int, column: int) -> None:
        key, equals, value = raw.strip().partition("=")
        where = self.at(number, column)
        if not equals:
            self.problem(where, f"{raw.strip()!r} is not a KEY=VALUE variable of [{group}:vars]")
            return
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values = self._values({key.strip(): (value, where)})
        self.vars.setdefault(group, {}).update(values)

    def _expand(self, pattern: str, where: Location) -> list[str]:
        found = _RANGE.search(pattern)
        if not found:
            return [pattern]
        first, last = found.groups()
        head, tail = pattern[: found.start()], pattern[found.end() :]
        if first.isdigit() and last.isdigit():
            width = len(first) if first.startswith("0") else 0
            items = [str(i).zfill(width) for i in range(int(first), int(last) + 1)]
        elif first.isalpha() and last.isalpha():
            letters = string.ascii_lowercase
            items = list(letters[letters.index(first) : letters.index(last) + 1])
        else:
            self.problem(where, f"the range [{first}:{last}] mixes digits and letters")
            return []
        if not items:
            self.problem(where, f"the range [{first}:{last}] is empty")
        return [host for item in items for host in self._expand(head + item + tail, where)]

    def _values(self, settings: dict[str, tuple[str, Location]]) -> dict[str, Any]:
        """The settings nestcustom reads, typed and checked; passwords refused."""
        out: dict[str, Any] = {}
        for key, (value, where) in settings.items():
            if SECRET.search(key.lower().replace("-", "_")):
                self.problem(
                    where,
                    f"{key!r} holds a password: nestcustom never handles passwords",
                    PASSWORD_HINT,
                )
                continue
            field = ANSIBLE_KEYS.get(key)
            if field is None:
                why = unused_var(key)
                if why:
                    self.warnings.append(f"{where}: warning: {why}")
                continue
            typed = self._typed(key, field, value, where)
            if typed is not None:
                out[field] = typed
        return out

    def _typed(self, key: str, field: str, value: str, where: Location) -> Any:
        if field == "sudo":
            if value.lower() in _BOOL:
                return _BOOL[value.lower()]
            self.problem(where, f"{key}={value!r}: expected true or false")
            return None
        if field == "port":
            if not value.isdigit() or not 1 <= int(value) <= 65535:
                self.problem(where, f"{key}={value!r}: a port is a number between 1 and 65535")
                return None
            return int(value)
        rule = {"address": "address", "user": "user", "key": "path"}[field]
        if not _validator(rule).is_valid(value):
            spec = inventory_schema()["$defs"][rule]
            self.problem(where, f"{key}={value!r} {spec['x-message']}", spec.get("x-hint"))
            return None
        return value

    def rows(self) -> list[Row]:
        groups = Groups()
        for parent, kids in self.children.items():
            for kid in kids:
                groups.child(parent, kid)
        for group, values in self.vars.items():
            groups.group_vars(group, values)
        for group, lines in self.hosts.items():
            for host, where, values in lines:
                groups.host(host, group, where, values)
        groups.first_at = dict(self.first_at)  # the order the file lists them in
        return groups.rows()


def read_ini(path: Path) -> tuple[list[Row], list[Problem], list[str]]:
    """(rows, problems, warnings) of the INI inventory at `path`."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        where = Location(str(path), 1, 1)
        return [], [Problem(where, "", f"cannot read the inventory: {exc.strerror}")], []
    except UnicodeDecodeError:
        where = Location(str(path), 1, 1)
        return [], [Problem(where, "", "the inventory is not UTF-8 text")], []
    reader = _Reader(path)
    reader.read(text)
    rows = reader.rows()
    if not rows and not reader.problems:
        reader.problem(
            Location(str(path), 1, 1), "the inventory lists no host", "list at least one host"
        )
    return rows, reader.problems, reader.warnings
