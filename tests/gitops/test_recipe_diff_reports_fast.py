"""`nestcustom diff OLD.yaml NEW.yaml` as a pull-request comment (Markdown) and for tools
(JSON), fast: test_units.py's two recipes, the command run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gitops.helpers import nestcustom
from tests.gitops.test_units import two_recipes  # noqa: F401 - a fixture

SP2 = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"
SP3 = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0-x86_64"


def diff(project: Path, fmt: str) -> str:
    done = nestcustom("diff", "recipes/old.yaml", "recipes/new.yaml", "--format", fmt, cwd=project)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_markdown_comment_of_two_recipes(two_recipes: Path) -> None:  # noqa: F811
    assert diff(two_recipes, "markdown") == "\n".join([
        "### Requested package changes",
        "",
        "A: `recipes/old.yaml`  ",
        "B: `recipes/new.yaml`",
        "",
        f"Base: `{SP2}` → `{SP3}`",
        "",
        "**1 added, 2 removed, 1 upgraded**",
        "",
        "| change | package | from | to |",
        "|---|---|---|---|",
        "| added | `htop` |  | (any version) |",
        "| upgraded | `jq` | 1.6-1 | 1.7-1 |",
        "| removed | `nano` | (any version) |  |",
        "| removed | `toolbox` | (from the base) |  |",
    ]) + "\n"  # fmt: skip


def change(kind: str, name: str, old: str | None, new: str | None) -> dict[str, object]:
    return {"kind": kind, "name": name, "arch": None, "old": old, "new": new, "changelog": []}


def test_the_json_of_two_recipes(two_recipes: Path) -> None:  # noqa: F811
    assert json.loads(diff(two_recipes, "json")) == {
        "command": "diff",
        "ok": True,
        "exit_code": 0,
        "a": "recipes/old.yaml",
        "b": "recipes/new.yaml",
        "base": {"old": SP2, "new": SP3},
        "changes": [
            change("added", "htop", None, "(any version)"),
            change("upgraded", "jq", "1.6-1", "1.7-1"),
            change("removed", "nano", "(any version)", None),
            change("removed", "toolbox", "(from the base)", None),
        ],
    }
