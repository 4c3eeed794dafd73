"""Properties of rendering over random valid recipes.

1. Every RUN line, read the way buildah reads it (continuations joined, comments
   skipped, the rest given to `/bin/sh -c`), splits back into exactly the
   commands and arguments the recipe asked for, and no recipe character reaches
   the shell outside quotes. A smaller sample runs the RUN bodies in a real
   `/bin/sh` against stub programs that record their argv.
2. Reordering or repeating the items of any package (or unit) list changes no byte.
3. Rendering is deterministic, and the recipe digest label changes whenever a
   package list changes as a set.

Recipes are generated as the data of a YAML document (dumped with
`yaml.safe_dump`) and go through the real loader: YAML, schema, lints.
"""

from __future__ import annotations

import random
import re
import shlex
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from nestcustom.containerfile.commands import HELPER
from nestcustom.containerfile.render import render_containerfile
from nestcustom.errors import RecipeError
from nestcustom.recipe.lint import package_name
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.values import unknown_names

# No architecture in the tag and no `arch:`: the arch lint stays out of the way of URLs.
BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the grammar, from nestcustom/recipe/schema/recipe.schema.json ---------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_NAME_FIRST = _ALNUM + "_+"  # $defs/package-name: ^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,199}$
_NAME_REST = _NAME_FIRST + ".-"
_EVR = _ALNUM + "_.+~^:-"  # the version after an operator
_URL_CHARS = _ALNUM + "._~:/?#@!&()*+,;=%$-"  # $defs/rpm-url: shell-hostile on purpose
_UNIT_CHARS = _ALNUM + ":_.@\\-"  # $defs/unit
_UNIT_SUFFIXES = [
    "service",
    "socket",
    "timer",
    "path",
    "target",
    "mount",
    "automount",
    "swap",
    "slice",
]
# Generated names are at most 24 characters: this one can never collide with them.
FRESH = "fresh-package-name-never-generated"

package_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_NAME_FIRST),
    st.text(_NAME_REST, max_size=23),
) | st.sampled_from(["strace", "gcc-c++", "python3.11", "perl-Net_SSLeay", "lib+x", "_x", "+"])

constraints = st.builds(
    lambda name, lead, op, trail, evr: f"{name}{lead}{op}{trail}{evr}",
    package_names,
    st.sampled_from(["", " "]),
    st.sampled_from(["<=", ">=", "=", "<", ">"]),
    st.sampled_from(["", " "]),
    st.text(_EVR, min_size=1, max_size=16),
) | st.sampled_from(["foo >= 1.2", "foo=1:2.3-4", "bar<2.0~rc1", "baz > 1^git", "q = 0:1-1.oe2203"])


def _password(url: str) -> bool:
    """A password in the URL is a lint error (rules_secrets), like a source RPM."""
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def _url(scheme: str, body: str, tail: str) -> str:
    return f"{scheme}://{body}{tail}.rpm"


rpm_urls = st.builds(
    _url,
    st.sampled_from(["https", "http", "file"]),
    st.text(_URL_CHARS, min_size=1, max_size=40),
    # A fixed tail keeps `.src.rpm` (a lint error) rare; "" leaves the body's end free.
    st.sampled_from(["", "-1.0-1.x86_64", ".noarch", "-$(reboot)", "-a&b;c(d)!"]),
).filter(lambda url: not url.endswith(".src.rpm") and not _password(url)) | st.sampled_from(
    [
        "https://repo.example.com/a&b;c/tmux-3.3a-2.x86_64.rpm",
        "https://h/$HOME/$(id)/*.rpm",
        "file:///tmp/(x)!%20y.rpm",
        "https://h/?q=1&r=$(rm-rf)#frag.rpm",
    ]
)

unit_names = st.builds(
    lambda stem, suffix: f"{stem}.{suffix}",
    st.text(_UNIT_CHARS, min_size=1, max_size=16),
    st.sampled_from(_UNIT_SUFFIXES),
) | st.sampled_from(
    [
        "getty@tty1.service",
        "serial-getty@.service",
        "dev-disk-by\\x2dlabel-root.mount",
        "systemd-fsck@dev-disk-by\\x2duuid-1234.service",
        "-.mount",
    ]
)

# Arguments of commands are free text: any printable character, values among them.
_HOSTILE = [*"ab $\\\"'&;|#`*?~<>(){}[]!%^=,", "&&", "$(reboot)", "é", "{{", "}}"]
# A token naming no value ({{a}}) is a lint error: generated text never forms one.
arguments = st.lists(st.sampled_from(_HOSTILE), max_size=10).map("".join).filter(
    lambda text: not unknown_names(text)
) | st.sampled_from(
    ["{{recipe.name}}", "kmod-{{kernel}}", "{{os.version}}-{{arch}}", "-", "--", "--mount=x"]
)
# Programs are recorders in the real-shell test; names a shell must not reinterpret.
programs = st.sampled_from(["tool-a", "tool_b"])
commands_run = st.lists(st.tuples(programs, st.lists(arguments, max_size=4)), max_size=3)
env_names = st.sampled_from(["A", "LANG", "with_under_9", "X1"])
envs = st.dictionaries(env_names, arguments, max_size=2)

# Layer descriptions are free text (they become a comment): nothing in them may leak.
descriptions = st.lists(
    st.sampled_from([*"ab $\\\"'&;|#\n\t`*", "&&", "\\\n", "RUN rm -rf /", "é", "\u2028"]),
    max_size=12,
).map("".join)


@dataclass(frozen=True)
class LayerSpec:
    name: str
    description: str
    install: list[str]
    remove: list[str]
    replace: list[str]
    swap: list[tuple[str, str]]
    run: list[tuple[str, list[str]]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def lists(self) -> dict[str, list[str]]:
        return {"install": self.install, "remove": self.remove, "replace": self.replace}


@dataclass(frozen=True)
class RecipeSpec:
    flavor: str
    rpm_ostree: str
    layers: list[LayerSpec]
    enable: list[str]
    disable: list[str]

    @property
    def nestos(self) -> bool:
        return self.flavor == "nestos"

    def document(self) -> dict[str, Any]:
        layers: list[dict[str, Any]] = []
        for layer in self.layers:
            entry: dict[str, Any] = {"name": layer.name}
            if layer.description:
                entry["description"] = layer.description
            entry.update({key: items for key, items in layer.lists().items() if items})
            if layer.swap:
                entry["swap"] = [{"remove": r, "install": i} for r, i in layer.swap]
            if layer.run:
                entry["run"] = [[program, *args] for program, args in layer.run]
            if layer.env:
                entry["env"] = layer.env
            layers.append(entry)
        doc: dict[str, Any] = {
            "name": "prop",
            "base": {"image": BASE, "flavor": self.flavor, "rpm-ostree": self.rpm_ostree},
            "layers": layers,
        }
        systemd = {k: v for k, v in (("enable", self.enable), ("disable", self.disable)) if v}
        if systemd:
            doc["systemd"] = systemd
        return doc


@st.composite
def layer_specs(draw: st.DrawFn, index: int, swaps: bool) -> LayerSpec:
    # Install and remove draw from one pool of distinct names, split in two: disjoint by
    # construction, so the install-and-remove lint never discards an example.
    pool = draw(st.lists(package_names, max_size=10, unique=True))
    cut = draw(st.integers(0, len(pool)))
    install: list[str] = []
    for name in pool[:cut]:
        if draw(st.booleans()):
            op = draw(st.sampled_from([" >= ", "=", "<", " > ", "<= "]))
            name = f"{name}{op}{draw(st.text(_EVR, min_size=1, max_size=10))}"
        install.append(name)
    install += draw(st.lists(rpm_urls, max_size=3))
    install += [c for c in draw(st.lists(constraints, max_size=2)) if package_name(c) not in pool]
    remove = pool[cut:]
    replace = draw(st.lists(rpm_urls, max_size=3))
    # Distinct pairs: a repeated swap is test_a_repeated_newstart_swap_renders_once's case.
    swap_pairs = st.tuples(package_names, constraints | package_names)
    swap = draw(st.lists(swap_pairs, max_size=2, unique=True)) if swaps else []
    run = draw(commands_run)
    env = draw(envs) if run else {}
    if not (install or remove or replace or swap or run):
        install = [draw(package_names)]
    return LayerSpec(f"l{index}", draw(descriptions), install, remove, replace, swap, run, env)


@st.composite
def recipe_specs(draw: st.DrawFn) -> RecipeSpec:
    flavor = draw(st.sampled_from(["nestos", "newstart"]))
    # `override remove --install` (swap) is refused by a lint before rpm-ostree 2022.17.
    rpm_ostree = draw(st.sampled_from(["2022.16", "2022.17", "2023.4"]))
    swaps = flavor == "newstart" or rpm_ostree != "2022.16"
    count = draw(st.integers(1, 4))
    layers = [draw(layer_specs(i, swaps)) for i in range(count)]
    units = draw(st.lists(unit_names, max_size=6, unique=True))
    cut = draw(st.integers(0, len(units)))
    return RecipeSpec(flavor, rpm_ostree, layers, units[:cut], units[cut:])


# --- loading, rendering, and reading the result as buildah does ------------------------

_LINT_CODES = {"install-and-remove", "kernel-replace", "source-rpm", "arch-mismatch"}


def render(doc: dict[str, Any]) -> str:
    """The Containerfile for a recipe document, loaded from a scratch project."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        path = project / "recipes" / "r.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        try:
            recipe = load_recipe(path, project=project).recipe
        except RecipeError as exc:
            # Only a lint the generator does not rule out (a replaced URL whose file name
            # reads like a kernel RPM, say) may discard; anything else is a generator bug.
            if {p.code for p in exc.problems} <= _LINT_CODES:
                assume(False)
            raise
        return render_containerfile(recipe, "containerfiles/x").containerfile


def instructions(containerfile: str) -> list[str]:
    """Logical instructions: `\\`-newline joined, comment and blank lines skipped."""
    out: list[str] = []
    current: str | None = None
    for line in containerfile.split("\n"):
        if line.lstrip().startswith("#"):
            continue  # buildah drops comment lines, inside continuations too
        if current is None:
            if not line.strip():
                continue
            current = ""
        if line.endswith("\\"):
            current += line[:-1]
        else:
            out.append(current + line)
            current = None
    assert current is None, "the Containerfile ends inside a continuation"
    return out


def run_bodies(containerfile: str) -> list[str]:
    """What buildah hands /bin/sh -c: the RUN text after its --mount flags."""
    bodies = []
    for instruction in instructions(containerfile):
        if instruction.startswith("RUN "):
            body = instruction[4:].lstrip()
            while body.startswith("--mount="):
                body = body.split(None, 1)[1]
            bodies.append(body)
    return bodies


def commands(body: str) -> list[list[str]]:
    """Shell words of a RUN body, split at the `&&` operators (not at a quoted '&&')."""
    parts, start, i = [], 0, 0
    while i < len(body):
        if body[i] == "'":
            i = body.index("'", i + 1) + 1  # shlex.quote's single quotes...
            continue
        if body.startswith('"\'"', i):
            i += 3  # ... and its "'" for a quote inside them
            continue
        if body.startswith(" && ", i):
            parts.append(body[start:i])
            start = i = i + 4
            continue
        i += 1
    parts.append(body[start:])
    return [shlex.split(part) for part in parts]


# Outside quotes a RUN body may hold only these (shlex.quote leaves such words bare),
# blanks between words, and the `&&` operators.
_BARE = set(_ALNUM + "@%+=:,./_-")


def unquoted_hazards(body: str) -> list[str]:
    """Characters a POSIX shell would interpret: anything outside single quotes but `&&`,
    blanks and the characters shlex.quote leaves bare.

    shlex.split alone cannot tell: it returns `a;b` as one word where sh runs two commands.
    """
    found: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "'":
            i = body.index("'", i + 1) + 1  # single quotes: all literal up to the next one
            continue
        if body.startswith('"\'"', i):
            i += 3  # shlex.quote writes a single quote as "'": nothing in it expands
            continue
        if body.startswith("&&", i) and body[i - 1 : i] == " " and body[i + 2 : i + 3] == " ":
            i += 2
            continue
        if char not in _BARE and char != " ":
            found.append(char)
        i += 1
    return found


def expected_runs(spec: RecipeSpec) -> list[list[list[str]]]:
    """What each RUN must run, from the recipe alone (render.layer_commands' order)."""

    def uniq(items: list[str]) -> list[str]:
        return sorted(set(items))

    runs: list[list[list[str]]] = []
    for layer in spec.layers:
        cmds: list[list[str]] = []
        install, remove, urls = uniq(layer.install), uniq(layer.remove), uniq(layer.replace)
        if spec.nestos:
            # rpm-ostree runs through the build helper, which then fixes the rpmdb's times.
            clamp = ["sh", HELPER, "clamp", "rpm-ostree"]
            if remove:
                cmds.append([*clamp, "override", "remove", *remove])
            if layer.swap:
                olds = uniq([r for r, _ in layer.swap])
                flags = [a for new in uniq([i for _, i in layer.swap]) for a in ("--install", new)]
                cmds.append([*clamp, "override", "remove", *olds, *flags])
            if urls:
                cmds.append([*clamp, "override", "replace", *urls])
            if install:
                cmds.append([*clamp, "install", *install])
            cmds += [_expected_command(layer, program, args) for program, args in layer.run]
            if remove or urls or install or layer.swap:
                cmds.append(["rm", "-rf", "/var/cache"])
            cmds.append(["ostree", "container", "commit"])
        else:
            if remove:
                cmds.append(["dnf", "-y", "remove", *remove])
            cmds += [["dnf", "-y", "swap", r, i] for r, i in sorted(set(layer.swap))]  # 1:1 only
            if urls:
                cmds.append(["dnf", "-y", "--allowerasing", "install", *urls])
            if install:
                cmds.append(["dnf", "-y", "install", *install])
            cmds += [_expected_command(layer, program, args) for program, args in layer.run]
            if remove or urls or install or layer.swap:
                cmds.append(["dnf", "clean", "all"])
        runs.append(cmds)
    units: list[list[str]] = []
    if spec.enable:
        units.append(["systemctl", "enable", *uniq(spec.enable)])
    if spec.disable:
        units.append(["systemctl", "disable", *uniq(spec.disable)])
    if units:
        runs.append(units + ([["ostree", "container", "commit"]] if spec.nestos else []))
    if spec.nestos:  # the build's last step: the host rules
        check = ["sh", HELPER, "check", "--host-rules"]
        runs.append([[*check, "--base", "/run/nestcustom/base"], ["ostree", "container", "commit"]])
    return runs


def _expected_command(layer: LayerSpec, program: str, args: list[str]) -> list[str]:
    """A command as run: env values first, known values filled in, the rest via the helper."""
    env = [f"{name}={value}" for name, value in layer.env.items()]
    argv = [*(["env", *env] if env else []), program, *args]
    argv = [a.replace("{{recipe.name}}", "prop") for a in argv]
    if any(re.search(r"\{\{[a-z.]+\}\}", a) for a in argv):
        return ["sh", HELPER, "exec", *argv]
    return argv


# --- property 1: the shell gets exactly the intended argv ------------------------------


@SETTINGS
@given(recipe_specs())
@example(
    RecipeSpec(
        "nestos",
        "2022.17",
        [
            LayerSpec(
                "l0",
                "tricky \\\nRUN rm -rf / && $(x)",
                ["foo >= 1.2", "foo=1:2.3-4", "https://h/$(id)&x;y(z)*!%.rpm", "gcc-c++"],
                ["toolbox", "_x.y"],
                ["file:///a;b&c(d)$e%f*g!h.rpm"],
                [("nano", "vim-enhanced >= 9")],
            )
        ],
        ["getty@tty1.service", "dev-disk-by\\x2dlabel-root.mount"],
        ["zincati.service"],
    )
)
def test_run_lines_split_back_into_the_intended_arguments(spec: RecipeSpec) -> None:
    containerfile = render(spec.document())
    bodies = run_bodies(containerfile)
    assert [commands(b) for b in bodies] == expected_runs(spec)
    for body in bodies:
        assert unquoted_hazards(body) == [], body
    # Only FROM, RUN and LABEL: no description text became an instruction.
    assert {i.split(" ", 1)[0] for i in instructions(containerfile)} == {"FROM", "RUN", "LABEL"}


_STUB = """#!/bin/sh
printf '%s\\0' "${0##*/}" "$@" >> "$ARGV_LOG"
printf '\\1\\0' >> "$ARGV_LOG"
"""
_PROGRAMS = ("rpm-ostree", "ostree", "rm", "dnf", "systemctl", "sh", "env", "tool-a", "tool_b")


def run_in_shell(body: str, workdir: Path) -> list[list[str]]:
    """Run a RUN body with /bin/sh -c as buildah does, every program a recorder."""
    bin_dir = workdir / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for program in _PROGRAMS:
            stub = bin_dir / program
            stub.write_text(_STUB)
            stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
        for name in ("a.rpm", "x", "home"):  # something for a stray glob to match
            (workdir / name).write_text("")
    log = workdir / "argv.log"
    log.write_bytes(b"")
    env = {"PATH": str(bin_dir), "ARGV_LOG": str(log), "HOME": "/home-leaked"}
    subprocess.run(["/bin/sh", "-c", body], cwd=workdir, env=env, check=True)
    calls: list[list[str]] = [[]]
    for word in log.read_bytes().decode().split("\0")[:-1]:
        if word == "\1":
            calls.append([])
        else:
            calls[-1].append(word)
    return calls[:-1]


@pytest.mark.skipif(not Path("/bin/sh").exists(), reason="needs a POSIX /bin/sh")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipe_specs())
def test_a_real_shell_runs_exactly_the_intended_argv(spec: RecipeSpec) -> None:
    bodies = run_bodies(render(spec.document()))
    # Never hand sh a body with unquoted recipe text: it could run anything on this machine.
    assert [unquoted_hazards(b) for b in bodies] == [[] for _ in bodies]
    with tempfile.TemporaryDirectory() as tmp:
        got = [run_in_shell(body, Path(tmp)) for body in bodies]
    assert got == expected_runs(spec)


# --- property 2: order and repeats of list items change nothing -----------------------


def shuffled(spec: RecipeSpec, rng: random.Random) -> RecipeSpec:
    def mix(items: list[Any]) -> list[Any]:
        extra = [rng.choice(items) for _ in range(rng.randint(0, 3))] if items else []
        out = items + extra
        rng.shuffle(out)
        return out

    layers = [
        replace(
            layer,
            install=mix(layer.install),
            remove=mix(layer.remove),
            replace=mix(layer.replace),
            swap=mix(layer.swap),
        )
        for layer in spec.layers
    ]
    return replace(spec, layers=layers, enable=mix(spec.enable), disable=mix(spec.disable))


@SETTINGS
@given(recipe_specs(), st.randoms(use_true_random=False))
def test_order_and_repeats_change_no_byte(spec: RecipeSpec, rng: random.Random) -> None:
    assert render(shuffled(spec, rng).document()) == render(spec.document())


def test_a_repeated_newstart_swap_renders_once() -> None:
    spec = RecipeSpec(
        "newstart", "2022.16", [LayerSpec("l0", "", [], [], [], [("a", "b")])], [], []
    )
    twice = replace(spec, layers=[replace(spec.layers[0], swap=[("a", "b"), ("a", "b")])])
    assert render(twice.document()) == render(spec.document())


# --- property 3: determinism, and the digest follows the packages ----------------------

_DIGEST = re.compile(r'io\.nestcustom\.recipe\.digest="(sha256:[0-9a-f]{64})"')


def digest(containerfile: str) -> str:
    found = _DIGEST.findall(containerfile)
    assert len(found) == 1, containerfile
    return str(found[0])


@st.composite
def changed(draw: st.DrawFn, spec: RecipeSpec) -> RecipeSpec:
    """`spec` with one package list of one layer different as a set."""
    index = draw(st.integers(0, len(spec.layers) - 1))
    layer = spec.layers[index]
    choices = ["add-install", "add-remove", "add-replace"]
    others = layer.remove or layer.replace or layer.swap
    if len(set(layer.install)) > 1 or (layer.install and others):
        choices.append("drop-install")  # the layer stays non-empty
    if layer.install:
        choices.append("rename-install")
    kind = draw(st.sampled_from(choices))
    if kind == "add-install":
        new = replace(layer, install=[*layer.install, FRESH])
    elif kind == "add-remove":
        new = replace(layer, remove=[*layer.remove, FRESH])
    elif kind == "add-replace":
        new = replace(layer, replace=[*layer.replace, f"https://fresh.example.com/{FRESH}.rpm"])
    else:
        victim = draw(st.sampled_from(sorted(set(layer.install))))
        kept = [p for p in layer.install if p != victim]
        new = replace(layer, install=kept if kind == "drop-install" else [*kept, FRESH + "-2"])
    layers = list(spec.layers)
    layers[index] = new
    return replace(spec, layers=layers)


@SETTINGS
@given(st.data())
def test_rendering_is_deterministic_and_the_digest_follows_packages(data: st.DataObject) -> None:
    spec = data.draw(recipe_specs())
    first, second = render(spec.document()), render(spec.document())
    assert first == second
    other = data.draw(changed(spec))
    assert digest(render(other.document())) != digest(first)
