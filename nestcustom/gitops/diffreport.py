"""A package diff as text (terminals, logs), Markdown (pull-request comments) or JSON (tools)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from nestcustom.gitops.diff import ImageDiff
from nestcustom.gitops.imagedb import ImageDb
from nestcustom.gitops.pkgdiff import Change, PackageDiff
from nestcustom.gitops.recipediff import RecipeDiff
from nestcustom.image.updatecost import human_size

KINDS = ("added", "removed", "upgraded", "downgraded", "changed")
MAX_CHANGELOG_LINES = 20  # per package in Markdown: a comment stays readable


def _layers_line(image: ImageDb) -> str:
    total = sum(layer.size for layer in image.layers)
    how = "compressed" if image.where == "registry" else "unpacked"
    return f"{len(image.layers)} layers, {human_size(total)} {how} ({image.where})"


def _change_text(change: Change) -> str:
    name = f"{change.name}.{change.arch}" if change.arch else change.name
    if change.old is None:
        return f"{name} {change.new}"
    if change.new is None:
        return f"{name} {change.old}"
    return f"{name} {change.old} -> {change.new}"


def _changelog_lines(change: Change) -> Iterator[str]:
    for entry in change.changelog:
        day = time.strftime("%a %b %d %Y", time.gmtime(entry.time))
        yield f"* {day} {entry.author}"
        yield from entry.text.splitlines()


def _section_text(diff: PackageDiff) -> list[str]:
    lines = []
    for kind in KINDS:
        changes = diff.of_kind(kind)
        if not changes:
            continue
        lines.append(f"{kind.capitalize()} ({len(changes)}):")
        for change in changes:
            lines.append(f"  {_change_text(change)}")
            lines += [f"      {line}" for line in _changelog_lines(change)]
    return lines or ["No package changes."]


def _update_line(diff: ImageDiff) -> list[str]:
    cost = diff.update
    if cost is None:
        return []
    return [
        f"Update: a host on A downloads {cost.layers} of B's {cost.of} layers, "
        f"{human_size(cost.size)} compressed (the layers it holds are kept by digest)"
    ]


def image_text(diff: ImageDiff) -> str:
    lines = [
        f"A: {diff.old.reference}: {diff.counts[0]} packages, {_layers_line(diff.old)}",
        f"B: {diff.new.reference}: {diff.counts[1]} packages, {_layers_line(diff.new)}",
        *_update_line(diff),
        *_section_text(diff.packages),
    ]
    return "\n".join(lines) + "\n"


def recipe_text(diff: RecipeDiff, old: str, new: str) -> str:
    lines = [f"A: {old}", f"B: {new}"]
    if diff.base:
        lines.append(f"Base: {diff.base[0]} -> {diff.base[1]}")
    return "\n".join([*lines, *_section_text(diff.packages)]) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section_markdown(diff: PackageDiff) -> list[str]:
    if not diff.changes:
        return ["No package changes."]
    counts = ", ".join(f"{len(diff.of_kind(k))} {k}" for k in KINDS if diff.of_kind(k))
    lines = [f"**{counts}**", "", "| change | package | from | to |", "|---|---|---|---|"]
    for change in diff.changes:
        name = f"{change.name}.{change.arch}" if change.arch else change.name
        lines.append(
            f"| {change.kind} | `{_md_cell(name)}` | {_md_cell(change.old or '')} "
            f"| {_md_cell(change.new or '')} |"
        )
    logs = [c for c in diff.changes if c.changelog]
    for change in logs:
        body = list(_changelog_lines(change))
        cut = len(body) > MAX_CHANGELOG_LINES
        body = body[:MAX_CHANGELOG_LINES] + (["..."] if cut else [])
        lines += [
            "",
            f"<details><summary>{change.name} {change.old} → {change.new}: changelog</summary>",
            "",
            "```",
            *(line.replace("```", "'''") for line in body),
            "```",
            "</details>",
        ]
    return lines


def image_markdown(diff: ImageDiff) -> str:
    lines = [
        "### Package changes",
        "",
        "| | image | packages | layers |",
        "|---|---|---|---|",
        f"| A | `{_md_cell(diff.old.reference)}` | {diff.counts[0]} | {_md_cell(_layers_line(diff.old))} |",
        f"| B | `{_md_cell(diff.new.reference)}` | {diff.counts[1]} | {_md_cell(_layers_line(diff.new))} |",
        "",
        *[f"{_md_cell(line)}  " for line in _update_line(diff)],
        *([""] if diff.update else []),
        *_section_markdown(diff.packages),
    ]
    return "\n".join(lines) + "\n"


def recipe_markdown(diff: RecipeDiff, old: str, new: str) -> str:
    lines = ["### Requested package changes", "", f"A: `{old}`  ", f"B: `{new}`", ""]
    if diff.base:
        lines += [f"Base: `{diff.base[0]}` → `{diff.base[1]}`", ""]
    return "\n".join([*lines, *_section_markdown(diff.packages)]) + "\n"


def _changes_json(diff: PackageDiff) -> list[dict[str, object]]:
    return [
        {
            "kind": c.kind,
            "name": c.name,
            "arch": c.arch or None,
            "old": c.old,
            "new": c.new,
            "changelog": [
                {"time": e.time, "author": e.author, "text": e.text} for e in c.changelog
            ],
        }
        for c in diff.changes
    ]


def _image_json(image: ImageDb, count: int) -> dict[str, object]:
    return {
        "reference": image.reference,
        "where": image.where,
        "packages": count,
        "rpmdb": image.db.directory if image.db else None,
        "layers": [{"digest": layer.digest, "size": layer.size} for layer in image.layers],
        "layers_read": image.layers_read,
        "downloaded": image.downloaded,
    }


def image_document(diff: ImageDiff) -> dict[str, object]:
    return {
        "a": _image_json(diff.old, diff.counts[0]),
        "b": _image_json(diff.new, diff.counts[1]),
        "update": (
            {"layers": diff.update.layers, "of": diff.update.of, "bytes": diff.update.size}
            if diff.update
            else None
        ),
        "changes": _changes_json(diff.packages),
    }


def recipe_document(diff: RecipeDiff, old: str, new: str) -> dict[str, object]:
    return {
        "a": old,
        "b": new,
        "base": {"old": diff.base[0], "new": diff.base[1]} if diff.base else None,
        "changes": _changes_json(diff.packages),
    }
