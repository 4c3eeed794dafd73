"""The rendering properties over random valid `selinux:` sections: the SELinux step's
RUN splits back into exactly the helper's arguments the recipe asked for (a real
`/bin/sh` runs it against stub programs), no recipe text reaches the shell outside
quotes, and the module files are bind-mounted from where the recipe names them.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from posixpath import basename
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestcustom.containerfile.commands import HELPER
from nestcustom.containerfile.render import render_containerfile
from nestcustom.recipe.load import load_recipe
from tests.containerfile.test_render_property import (
    commands,
    instructions,
    run_bodies,
    run_in_shell,
    unquoted_hazards,
)
from tests.recipe.test_selinux import policy_package

BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WORD = _LETTERS + "0123456789_"
# What a mounted project path may hold (rules_selinux._MOUNTABLE), shell-special ones too.
_PATH_CHARS = _WORD + ".+@=:%~-"

boolean_names = st.builds(
    lambda a, b: a + b, st.sampled_from(_LETTERS), st.text(_WORD, max_size=20)
)
module_names = st.builds(
    lambda a, b, c: a + b + (f".{c}" if c else ""),
    st.sampled_from(_LETTERS),
    st.text(_WORD + "-", max_size=12),
    st.text(_WORD + "-", max_size=4),
)
folders = st.lists(
    st.text(_PATH_CHARS, min_size=1, max_size=10).filter(lambda s: s not in (".", "..")),
    max_size=2,
).map(lambda parts: "/".join(["files", *parts]))


@st.composite
def sections(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(the selinux: section, the module files it names: path -> content)."""
    names = draw(st.lists(module_names, max_size=3, unique_by=str.lower))
    files: dict[str, bytes] = {}
    for name in names:
        folder = draw(folders)
        if draw(st.booleans()):
            files[f"{folder}/{name}.cil"] = f"(type {name.replace('.', '_')}_t)\n".encode()
        else:  # a .pp is named by its content, so its file name is free
            stem = draw(st.text(_PATH_CHARS, min_size=1, max_size=10))
            files[f"{folder}/{stem}.pp"] = policy_package(name)
    booleans = draw(st.dictionaries(boolean_names, st.booleans(), max_size=4))
    section: dict[str, Any] = {}
    if files:
        section["modules"] = list(files)
        section["priority"] = draw(st.integers(1, 999))
    if booleans or not files:
        section["booleans"] = booleans or {"x": True}
    return section, files


def render(section: dict[str, Any], files: dict[str, bytes]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for path, content in files.items():
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            (project / path).write_bytes(content)
        recipe = project / "recipes" / "r.yaml"
        recipe.parent.mkdir()
        doc = {"name": "r", "base": {"image": BASE}, "selinux": section}
        recipe.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        loaded = load_recipe(recipe, project=project).recipe
        return render_containerfile(loaded, "containerfiles/x").containerfile


def expected(section: dict[str, Any], files: dict[str, bytes]) -> list[list[str]]:
    args = ["--nestos"]
    if files:
        args += ["--priority", str(section["priority"])]
    for path, content in files.items():
        digest = hashlib.sha256(content).hexdigest()[:16]
        args += ["--module", f"/run/nestcustom/selinux/{digest}/{basename(path)}"]
    for name, value in sorted(section.get("booleans", {}).items()):
        args += ["--boolean", name, "on" if value else "off"]
    return [["sh", HELPER, "selinux", *args], ["ostree", "container", "commit"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sections())
def test_the_selinux_step_runs_exactly_the_intended_argv(
    drawn: tuple[dict[str, Any], dict[str, bytes]],
) -> None:
    section, files = drawn
    containerfile = render(section, files)
    steps = run_bodies(containerfile)
    selinux = [body for body in steps if " selinux " in body]
    assert len(selinux) == 1, containerfile
    body = selinux[0]
    assert unquoted_hazards(body) == [], body
    assert commands(body) == expected(section, files)
    with tempfile.TemporaryDirectory() as tmp:
        assert run_in_shell(body, Path(tmp)) == expected(section, files)
    run = next(i for i in instructions(containerfile) if " selinux " in i)
    for path, content in files.items():
        target = f"/run/nestcustom/selinux/{hashlib.sha256(content).hexdigest()[:16]}/"
        assert f"--mount=type=bind,source={path},target={target}{basename(path)} " in run
