"""Build-time values: `{{kernel}}`, `{{os.version}}`, ... in arguments, URLs and paths.

One table is the truth: each value says what it means, whether nestcustom knows
it when rendering (then it is substituted into the Containerfile) and otherwise
how the build reads it from the image (the build helper's `facts`, fixed code:
no recipe string is ever expanded by a shell). The README's list comes from
this table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from nestcustom.recipe.model import Recipe

TOKEN = re.compile(r"\{\{([a-z.]+)\}\}")


@dataclass(frozen=True)
class Value:
    name: str
    meaning: str
    example: str
    # Known when rendering: returns the text, or None when only the build can tell.
    at_render: Callable[[Recipe], str | None] | None = None


def _arch(recipe: Recipe) -> str | None:
    return recipe.arch or recipe.base.tag_arch


def _base_version(recipe: Recipe) -> str | None:
    """22.03-LTS-SP2.20230922.0 from a NestOS tag such as ...:22.03-LTS-SP2.20230922.0-x86_64."""
    _, _, tag = recipe.base.image.rpartition("/")[2].partition(":")
    version = re.sub(r"-(x86_64|aarch64|riscv64|loongarch64)$", "", tag)
    return version or None


VALUES: tuple[Value, ...] = (
    Value(
        "kernel",
        "the image's kernel version: the one directory under /usr/lib/modules with a vmlinuz",
        "5.10.0-182.0.0.95.oe2203sp3.x86_64",
    ),
    Value("os.id", "ID from the image's os-release", "nestos"),
    Value("os.version", "VERSION_ID from the image's os-release", "22.03-LTS-SP3"),
    Value("dist", "the image's %{dist} RPM macro (may be empty)", ".oe2203sp3"),
    Value(
        "arch",
        "the architecture: the recipe's arch:, else the base tag's, else the image's uname -m",
        "x86_64",
        _arch,
    ),
    Value("recipe.name", "the recipe's name:", "nestos-debug", lambda r: r.name),
    Value(
        "base.version",
        "the base tag without its architecture",
        "22.03-LTS-SP3.20240110.0",
        _base_version,
    ),
)
BY_NAME = {value.name: value for value in VALUES}


def names_in(text: str) -> list[str]:
    """Every value named in `text`, in order."""
    return TOKEN.findall(text)


def unknown_names(text: str) -> list[str]:
    return [name for name in names_in(text) if name not in BY_NAME]


def substitute_known(text: str, recipe: Recipe) -> str:
    """`text` with every value known at render time filled in; the others stay as tokens."""

    def fill(match: re.Match[str]) -> str:
        value = BY_NAME.get(match.group(1))
        known = value.at_render(recipe) if value and value.at_render else None
        return known if known is not None else match.group(0)

    return TOKEN.sub(fill, text)


def needs_build(text: str) -> bool:
    """Whether `text` still names a value only the build can read."""
    return bool(TOKEN.search(text))


def values_markdown(indent: str = "  ") -> str:
    """The README's table of values (rows only, under its header), from VALUES."""
    rows = []
    for value in VALUES:
        when = "known from the recipe" if value.at_render else "read from the image in the build"
        rows.append(
            f"{indent}| `{{{{{value.name}}}}}` | {value.meaning}; {when} (e.g. `{value.example}`) |"
        )
    return "\n".join([f"{indent}| value | meaning |", f"{indent}|---|---|", *rows]) + "\n"
