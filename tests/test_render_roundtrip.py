"""Property: any valid recipe renders to RUN lines a shell splits back into exactly the
intended arguments, whatever characters its package names and URLs hold."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nestcustom.recipe import load_recipe
from nestcustom.render import render_containerfile

BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"
_NAME_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+"
_NAME_REST = _NAME_START + ".-"
_EVR = "abcXYZ0123456789.+~^:-_"
_URL = "abcxyz0123456789._~:/?#@!&()*+,;=%$-"

names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_NAME_START),
    st.text(_NAME_REST, max_size=20),
)
constraints = st.builds(
    lambda name, op, evr: f"{name} {op} {evr}",
    names,
    st.sampled_from(["<", ">", "=", "<=", ">="]),
    st.text(_EVR, min_size=1, max_size=12),
)
urls = st.builds(
    lambda scheme, path: f"{scheme}://{path}.rpm",
    st.sampled_from(["https", "http", "file"]),
    st.text(_URL, min_size=1, max_size=40),
)
units = st.builds(
    lambda stem, suffix: stem + suffix,
    st.text("abcz09:_.@\\-", min_size=1, max_size=12),
    st.sampled_from([".service", ".timer", ".socket"]),
)


@st.composite
def layers(draw: st.DrawFn) -> dict[str, object]:
    install = draw(st.lists(st.one_of(names, constraints, urls), max_size=6))
    taken = {i.split(" ")[0] for i in install}
    remove = draw(st.lists(names.filter(lambda n: n not in taken), max_size=4))
    replace = draw(st.lists(urls, max_size=3))
    if not (install or remove or replace):
        install = [draw(names)]
    return {"install": install, "remove": remove, "replace": replace}


@st.composite
def recipes(draw: st.DrawFn) -> dict[str, object]:
    chosen = draw(st.lists(layers(), min_size=1, max_size=4))
    recipe: dict[str, object] = {
        "name": "prop",
        "base": {"image": BASE, "flavor": draw(st.sampled_from(["nestos", "newstart"]))},
        "layers": [{"name": f"l{i}", **layer} for i, layer in enumerate(chosen)],
    }
    enable = draw(st.lists(units, max_size=3, unique=True))
    disable = draw(st.lists(units.filter(lambda u: u not in enable), max_size=3, unique=True))
    if enable or disable:
        recipe["systemd"] = {"enable": enable, "disable": disable}
    return recipe


def _runs(text: str) -> list[list[list[str]]]:
    """Each RUN as buildah runs it: continuations joined, shell words, split at &&."""
    joined = text.replace("\\\n", "")
    runs = []
    for line in joined.splitlines():
        if line.startswith("RUN "):
            commands: list[list[str]] = [[]]
            for word in shlex.split(line[4:]):
                if word == "&&":
                    commands.append([])
                else:
                    commands[-1].append(word)
            runs.append(commands)
    return runs


def _expected(recipe: dict[str, object]) -> list[list[list[str]]]:
    nestos = recipe["base"]["flavor"] == "nestos"  # type: ignore[index]
    expected = []
    for layer in recipe["layers"]:  # type: ignore[attr-defined]
        install, remove, replace = (sorted(set(layer[k])) for k in ("install", "remove", "replace"))
        commands = []
        if nestos:
            if remove:
                commands.append(["rpm-ostree", "override", "remove", *remove])
            if replace:
                commands.append(["rpm-ostree", "override", "replace", *replace])
            if install:
                commands.append(["rpm-ostree", "install", *install])
            commands += [["rm", "-rf", "/var/cache"], ["ostree", "container", "commit"]]
        else:
            if remove:
                commands.append(["dnf", "-y", "remove", *remove])
            if replace:
                commands.append(["dnf", "-y", "--allowerasing", "install", *replace])
            if install:
                commands.append(["dnf", "-y", "install", *install])
            commands.append(["dnf", "clean", "all"])
        expected.append(commands)
    systemd = recipe.get("systemd")
    if isinstance(systemd, dict):
        commands = []
        if systemd["enable"]:
            commands.append(["systemctl", "enable", *sorted(systemd["enable"])])
        if systemd["disable"]:
            commands.append(["systemctl", "disable", *sorted(systemd["disable"])])
        if nestos:
            commands.append(["ostree", "container", "commit"])
        expected.append(commands)
    return expected


def _render(recipe: dict[str, object]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipes" / "r.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(recipe))
        return render_containerfile(load_recipe(path, project=Path(tmp)).recipe, "c").containerfile


@settings(max_examples=150, deadline=None)
@given(recipes())
def test_run_lines_split_back_into_the_intended_arguments(recipe: dict[str, object]) -> None:
    assert _runs(_render(recipe)) == _expected(recipe)


@settings(max_examples=50, deadline=None)
@given(recipes(), st.randoms())
def test_order_and_repeats_change_nothing(recipe: dict[str, object], random: object) -> None:
    shuffled = yaml.safe_load(yaml.safe_dump(recipe))
    for layer in shuffled["layers"]:
        for key in ("install", "remove", "replace"):
            items = layer[key] + layer[key][:1]
            random.shuffle(items)  # type: ignore[attr-defined]
            layer[key] = items
    assert _render(shuffled) == _render(recipe)
