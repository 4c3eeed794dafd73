"""YAML with positions: every mapping, list and scalar remembers where it came from.

PyYAML's composer (libyaml's C one where present) gives nodes with marks; we
construct plain dicts and lists from them ourselves so that

- every value can be traced back to FILE:LINE:COL for error messages,
- duplicate keys are refused instead of silently keeping the last one,
- the raw text of a scalar is kept, so a message can say that `no` was read
  as a boolean or `1.10` as the number 1.1, and how to quote it,
- aliases cannot blow up memory (a node budget) and nesting is bounded.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nestcustom.errors import Location, Problem

try:  # libyaml's C parser is several times faster; fall back where it is missing.
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"


def _implicit_resolvers() -> dict[str | None, list[tuple[str, Any]]]:
    """PyYAML's implicit resolvers by a scalar's first character, each list already ending
    with the ones for any character, in PyYAML's order."""
    table = _SafeLoader.yaml_implicit_resolvers
    anywhere = list(table.get(None, []))
    by_first: dict[str | None, list[tuple[str, Any]]] = {
        first: [*resolvers, *anywhere] for first, resolvers in table.items() if first is not None
    }
    by_first[None] = anywhere
    return by_first


class _Loader(_SafeLoader):
    """The safe loader, resolving tags with less work per node.

    The composer asks the resolver about every node it makes: three calls into
    PyYAML's Python, a fifth of composing a recipe. The safe loader has no path
    resolvers, so descending and ascending do nothing, and a scalar's tag depends
    on its text alone: the same implicit resolvers as PyYAML's, in the same
    order, looked up once by first character.
    """

    _by_first = _implicit_resolvers()

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                by_first = self._by_first
                for tag, regexp in by_first.get(value[:1]) or by_first[None]:
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


@dataclass(frozen=True)
class Origin:
    """Where a value was written, and (for scalars) the text as written."""

    location: Location
    raw: str | None = None
    tag: str = _STR
    plain: bool = False  # an unquoted scalar: the YAML 1.1 resolver decided its type

    @classmethod
    def of(cls, node: yaml.Node) -> Origin:
        """The origin of a composed node; its marks carry the file's display name."""
        mark = node.start_mark
        location = Location(mark.name, mark.line + 1, mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            # libyaml says "" for a plain scalar's style where PyYAML says None.
            return cls(location, node.value, node.tag, not node.style)
        return cls(location)


# Containers keep the composed nodes, not Origins: a recipe has a few hundred values and
# almost none of them is ever reported, so an Origin is made only when one is asked for.


class YamlMap(dict[str, Any]):
    """A dict that knows where it, its keys and its values were written."""

    __slots__ = ("key_nodes", "node", "value_nodes")

    def __init__(self, node: yaml.Node) -> None:  # (dict's own __init__ has nothing to do)
        self.node = node
        self.key_nodes: dict[str, yaml.Node] = {}
        self.value_nodes: dict[str, yaml.Node] = {}

    @property
    def origin(self) -> Origin:
        return Origin.of(self.node)

    def key_origin(self, key: str) -> Origin | None:
        node = self.key_nodes.get(key)
        return Origin.of(node) if node is not None else None

    def value_origin(self, key: str) -> Origin | None:
        node = self.value_nodes.get(key)
        return Origin.of(node) if node is not None else None


class YamlList(list[Any]):
    """A list that knows where it and each item were written."""

    __slots__ = ("item_nodes", "node")

    def __init__(self, node: yaml.Node) -> None:  # (list's own __init__ has nothing to do)
        self.node = node
        self.item_nodes: list[yaml.Node] = []

    @property
    def origin(self) -> Origin:
        return Origin.of(self.node)

    def item_origin(self, index: int) -> Origin:
        return Origin.of(self.item_nodes[index])


def child_origin(container: object, key: str | int) -> Origin | None:
    """The origin of `container[key]`, if the container keeps positions."""
    if isinstance(container, YamlMap) and isinstance(key, str):
        return container.value_origin(key)
    if isinstance(container, YamlList) and isinstance(key, int) and 0 <= key < len(container):
        return container.item_origin(key)
    return None


def origin_of(root: object, path: tuple[str | int, ...], *, key: bool = False) -> Origin | None:
    """Walk `path` from `root`; the origin of the deepest value reached.

    With `key=True` and a path ending in a mapping key, the key's own position
    is returned (where an unknown key should be pointed at).
    """
    node: Any = root
    best: Origin | None = getattr(root, "origin", None)
    for depth, step in enumerate(path):
        last = depth == len(path) - 1
        if key and last and isinstance(node, YamlMap) and isinstance(step, str):
            return node.key_origin(step) or best
        found = child_origin(node, step)
        if found is None:
            return best
        best = found
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return best
    return best


class _Builder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[Problem] = []
        self.nodes = 0
        self._scalars: _Loader | None = None  # made for the first scalar that is not text

    def location(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.name, mark.line + 1, mark.column + 1)

    def fail(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.location(node), "", message, hint, code="yaml"))

    def count(self, node: yaml.Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(node, f"more than {MAX_NODES} values (aliases expanding?)")
        if depth > MAX_DEPTH:
            raise _TooBig(node, f"nested more than {MAX_DEPTH} levels deep")

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        self.count(node, depth)
        if isinstance(node, yaml.MappingNode):
            return self.build_map(node, depth)
        if isinstance(node, yaml.SequenceNode):
            return self.build_list(node, depth)
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == _STR:
            return node.value
        return self.construct(node)

    # Text is most of a recipe (every package is an item of a list): the loops below take
    # it in place, without a call of `build` per item; the counts and limits are the same.

    def build_list(self, node: yaml.SequenceNode, depth: int) -> YamlList:
        out = YamlList(node)
        append = out.append
        depth += 1
        for item in node.value:
            if item.tag == _STR and item.__class__ is yaml.ScalarNode:
                if self.nodes >= MAX_NODES or depth > MAX_DEPTH:
                    self.count(item, depth)  # raises
                self.nodes += 1
                append(item.value)
            else:
                append(self.build(item, depth))
        out.item_nodes.extend(node.value)
        return out

    def construct(self, node: yaml.ScalarNode) -> Any:
        if self._scalars is None:
            self._scalars = _Loader("")  # only its scalar constructors are used
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.fail(node, f"cannot read {node.value!r}: {exc.problem}")
            return node.value

    def build_map(self, node: yaml.MappingNode, depth: int) -> YamlMap:
        out = YamlMap(node)
        key_nodes, value_nodes = out.key_nodes, out.value_nodes
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            # A new text key with a text value, as `put` would take it, without the call.
            if (
                value_node.tag == _STR
                and value_node.__class__ is yaml.ScalarNode
                and key_node.__class__ is yaml.ScalarNode
                and key_node.tag != _MERGE
                and key_node.value not in out
                and self.nodes < MAX_NODES
                and depth < MAX_DEPTH
            ):
                self.nodes += 1
                key = key_node.value
                out[key] = value_node.value
                key_nodes[key] = key_node
                value_nodes[key] = value_node
                continue
            if key_node.tag == _MERGE:  # `<<: *defaults` merges, explicit keys win
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(source.value)
                    else:
                        self.fail(source, "'<<' must merge a mapping or a list of mappings")
                continue
            self.put(out, key_node, value_node, depth, explicit=True)
        for key_node, value_node in merged:
            self.put(out, key_node, value_node, depth, explicit=False)
        return out

    def put(
        self,
        out: YamlMap,
        key_node: yaml.Node,
        value_node: yaml.Node,
        depth: int,
        *,
        explicit: bool,
    ) -> None:
        if not isinstance(key_node, yaml.ScalarNode):
            self.fail(key_node, "a mapping key must be a plain name, not a list or mapping")
            return
        # Keys are names: keep them as written (`on:` stays "on", `1.10:` stays "1.10").
        key = key_node.value
        if key in out:
            if explicit:
                first = self.location(out.key_nodes[key])
                self.fail(
                    key_node,
                    f"duplicate key {key!r} (first at line {first.line}, column {first.column})",
                    "YAML keeps only the last of duplicate keys; remove one of them",
                )
            return
        if value_node.tag == _STR and value_node.__class__ is yaml.ScalarNode:
            if self.nodes >= MAX_NODES or depth + 1 > MAX_DEPTH:
                self.count(value_node, depth + 1)  # raises
            self.nodes += 1
            out[key] = value_node.value
        else:
            out[key] = self.build(value_node, depth + 1)
        out.key_nodes[key] = key_node
        out.value_nodes[key] = value_node


class _Named(io.StringIO):
    """Text with a name: the parser stamps it on every mark, so nodes know their file."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


class _TooBig(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def _decode(name: str, data: bytes) -> tuple[str | None, list[Problem]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        problem = Problem(
            Location(name, line, column),
            "",
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            "save the file as UTF-8",
            code="yaml",
        )
        return None, [problem]
    return text, []


@dataclass(frozen=True)
class FileKind:
    """What a YAML file is, for the words of its problems: the loader serves recipes and
    inventories alike."""

    plural: str = "recipes"
    needs: str = "a recipe needs at least name, base and layers"
    too_big: str = "split it, or share fragments with include:"


RECIPE = FileKind()
INVENTORY = FileKind(
    "inventories",
    "an inventory needs hosts: (or Ansible groups with hosts)",
    "split the fleet into several inventories",
)


def load_yaml(
    path: Path, display_name: str | None = None, kind: FileKind = RECIPE
) -> tuple[Any, list[Problem]]:
    """Parse one YAML file into YamlMap/YamlList/scalars, with every problem found.

    Returns (None, problems) when the file cannot be read as YAML at all.
    """
    name = display_name or str(path)
    start = Location(name, 1, 1)
    try:
        with path.open("rb") as file:  # one open for the size and the bytes
            size = os.fstat(file.fileno()).st_size
            if size > MAX_FILE_BYTES:
                return None, [
                    Problem(
                        start,
                        "",
                        f"file is {size / 1024 / 1024:.1f} MiB; {kind.plural} are limited to "
                        f"{MAX_FILE_BYTES // 1024 // 1024} MiB",
                        kind.too_big,
                        code="yaml",
                    )
                ]
            data = file.read()
    except OSError as exc:
        return None, [Problem(start, "", f"cannot read file: {exc.strerror}", code="io")]
    text, problems = _decode(name, data)
    if text is None:
        return None, problems
    return parse_yaml(text, name, kind)


def parse_yaml(text: str, name: str, kind: FileKind = RECIPE) -> tuple[Any, list[Problem]]:
    """Like `load_yaml`, for text already in memory."""
    start = Location(name, 1, 1)
    try:
        node = yaml.compose(_Named(text, name), Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(name, text, exc)]
    except yaml.YAMLError as exc:  # errors without a mark
        return None, [Problem(start, "", f"not valid YAML: {exc}", code="yaml")]
    if node is None:
        return None, [
            Problem(
                start,
                "",
                "the file is empty",
                kind.needs,
                code="yaml",
            )
        ]
    builder = _Builder(name)
    try:
        value = builder.build(node)
    except _TooBig as exc:
        builder.fail(exc.node, exc.message)
        return None, builder.problems
    return value, builder.problems


def _syntax_problem(name: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    location = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1)
    message = exc.problem or str(exc)
    if exc.context:
        message = f"{exc.context}: {message}"
    hint = None
    lines = text.splitlines()
    line = lines[location.line - 1] if 0 < location.line <= len(lines) else ""
    if "\t" in line[: location.column]:
        message = "a tab character where YAML expects spaces"
        hint = "YAML indentation must use spaces, not tabs"
    elif "expected a single document" in message:
        hint = "a recipe is one YAML document: remove the extra '---'"
    return Problem(location, "", f"not valid YAML: {message}", hint, code="yaml")
