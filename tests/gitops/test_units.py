"""The pure parts of GitOps: package diffs, the database search in layers, recipe diffs, tags."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from nestcustom.gitops.blobs import Reference, repository_of
from nestcustom.gitops.pkgdiff import diff_packages, new_entries, with_changelogs
from nestcustom.gitops.plan import PlannedStep, compare
from nestcustom.gitops.stepkeys import StepKey, step_keys
from nestcustom.gitops.tags import recipe_version
from nestcustom.image.dblayers import DbSearch, tar_entries
from nestcustom.image.inputs import Provenance, image_inputs
from nestcustom.image.rpmdb import ChangelogEntry, Package
from nestcustom.recipe.load import load_recipe
from tests.conftest import ROOT
from tests.gitops.helpers import nestcustom


def pkg(name: str, evr: str, arch: str = "x86_64") -> Package:
    epoch, _, rest = evr.rpartition(":")
    version, release = rest.split("-")
    return Package(name, arch, int(epoch or 0), version, release)


def kinds(old: list[Package], new: list[Package]) -> list[tuple[str, str, str | None, str | None]]:
    return [(c.kind, c.name, c.old, c.new) for c in diff_packages(old, new).changes]


def test_package_diff_kinds_as_rpm_orders_versions() -> None:
    old = [pkg("a", "1.0-1"), pkg("b", "1.10-1"), pkg("c", "2.0-1"), pkg("gone", "1-1")]
    new = [pkg("a", "1.0-1"), pkg("b", "1.9-1"), pkg("c", "1:1.0-1"), pkg("new", "1-1")]
    assert kinds(old, new) == [
        ("downgraded", "b", "1.10-1", "1.9-1"),
        ("upgraded", "c", "2.0-1", "1:1.0-1"),  # the epoch wins
        ("removed", "gone", "1-1", None),
        ("added", "new", None, "1-1"),
    ]


def test_package_diff_of_multiple_instances_and_arch_changes() -> None:
    old = [pkg("kernel", "5.10-1"), pkg("kernel", "5.10-2"), pkg("tool", "1-1", "noarch")]
    new = [pkg("kernel", "5.10-2"), pkg("kernel", "5.10-3"), pkg("tool", "1-1")]
    assert kinds(old, new) == [
        ("upgraded", "kernel", "5.10-1", "5.10-3"),
        ("removed", "tool", "1-1", None),  # noarch
        ("added", "tool", None, "1-1"),  # x86_64
    ]
    assert diff_packages(old, old).changes == ()


def test_an_upgrade_gets_the_changelog_entries_newer_than_the_old_package() -> None:
    first = ChangelogEntry(100, "A - 1-1", "- one")
    second = ChangelogEntry(200, "B - 2-1", "- two")
    third = ChangelogEntry(300, "C - 3-1", "- three")
    assert new_entries((first,), (third, second, first)) == (third, second)
    assert new_entries((), (second, first)) == (second, first)
    diff = diff_packages([pkg("p", "1-1")], [pkg("p", "3-1")])
    logged = with_changelogs(diff, {("p", "1-1"): (first,)}, {("p", "3-1"): (third, first)})
    assert logged.changes[0].changelog == (third,)


def layer(files: dict[str, bytes | None], opaque: tuple[str, ...] = ()) -> io.BytesIO:
    """A layer tar: None marks a whiteout of that path."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for path, content in files.items():
            directory, _, name = path.rpartition("/")
            if content is None:
                path = f"{directory}/.wh.{name}"
                content = b""
            info = tarfile.TarInfo(path)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for directory in opaque:
            info = tarfile.TarInfo(f"{directory}/.wh..wh..opq")
            archive.addfile(info, io.BytesIO(b""))
    data.seek(0)
    return data


def test_the_database_search_stops_at_the_first_layer_holding_it() -> None:
    search = DbSearch()
    top = layer({"usr/bin/tool": b"x", "etc/motd": b"hi"})
    assert search.add_layer(*tar_entries(top)) is None
    middle = layer({"usr/share/rpm/rpmdb.sqlite": b"new", "usr/share/rpm/rpmdb.sqlite-wal": None})
    found = search.add_layer(*tar_entries(middle))
    assert found is not None and search.layers_read == 2
    assert (found.directory, found.backend, found.files) == (
        "usr/share/rpm",
        "sqlite",
        {"rpmdb.sqlite": b"new"},  # the lower write-ahead log was deleted above: not used
    )


def test_a_deleted_or_hidden_database_is_looked_for_below() -> None:
    search = DbSearch()
    assert search.add_layer(*tar_entries(layer({"var/lib/rpm/Packages": None}))) is None
    assert search.add_layer(*tar_entries(layer({"var/lib/rpm/Packages": b"old"}))) is None
    hidden = DbSearch()
    upper = layer({"usr/share/rpm/rpmdb.sqlite": b"top"}, opaque=("usr/share/rpm",))
    found = hidden.add_layer(*tar_entries(upper))
    assert found is not None and found.files == {"rpmdb.sqlite": b"top"}
    other = DbSearch()
    assert other.add_layer(*tar_entries(layer({}, opaque=("usr/share/rpm",)))) is None
    below = layer({"usr/share/rpm/rpmdb.sqlite": b"lower"})
    assert other.add_layer(*tar_entries(below)) is None  # hidden by the opaque directory above


def test_references_and_repositories() -> None:
    assert Reference.parse("127.0.0.1:5000/ci/web:v1") == Reference(
        "127.0.0.1:5000", "ci/web", "v1"
    )
    assert Reference.parse("nginx") == Reference("registry-1.docker.io", "library/nginx", "latest")
    digest = "sha256:" + "a" * 64
    assert Reference.parse(f"quay.io/o/i@{digest}") == Reference("quay.io", "o/i", digest)
    assert repository_of("127.0.0.1:5000/ci/web:v1") == "127.0.0.1:5000/ci/web"
    assert repository_of(f"quay.io/o/i@{digest}") == "quay.io/o/i"


@pytest.mark.parametrize(
    ("base", "labels", "version"),
    [
        ("hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64", "", "22.03-LTS-SP2"),
        ("registry.example.com/newstart:v6.06-x86_64", "", "v6.06"),
        ("localhost/base:latest", "labels: {org.opencontainers.image.version: '2.1'}\n", "2.1"),
        ("localhost/base:latest", "", "0"),  # a moving tag is no version
    ],
)
def test_release_version_from_the_recipe_or_its_base(
    tmp_path: Path, base: str, labels: str, version: str
) -> None:
    path = tmp_path / "recipes" / "r.yaml"
    path.parent.mkdir()
    path.write_text(
        f"name: r\ndescription: r\nbase: {{image: '{base}'}}\n{labels}"
        "layers: [{name: a, install: [strace]}]\n"
    )
    assert recipe_version(load_recipe(path, tmp_path).recipe) == version


OLD = """\
name: web
description: web
base: {image: "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"}
layers:
  - {name: tools, install: [strace, "jq = 1.6-1", nano]}
"""
NEW = """\
name: web
description: web
base: {image: "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0-x86_64"}
layers:
  - {name: tools, install: [strace, "jq = 1.7-1", htop], remove: [toolbox]}
"""


@pytest.fixture
def two_recipes(tmp_path: Path) -> Path:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "old.yaml").write_text(OLD)
    (tmp_path / "recipes" / "new.yaml").write_text(NEW)
    return tmp_path


def test_diff_of_two_recipes_shows_what_they_ask_for(two_recipes: Path) -> None:
    result = nestcustom("diff", "recipes/old.yaml", "recipes/new.yaml", cwd=two_recipes)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "A: recipes/old.yaml\n"
        "B: recipes/new.yaml\n"
        "Base: hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64 -> "
        "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP3.20240110.0-x86_64\n"
        "Added (1):\n"
        "  htop (any version)\n"
        "Removed (2):\n"
        "  nano (any version)\n"
        "  toolbox (from the base)\n"
        "Upgraded (1):\n"
        "  jq 1.6-1 -> 1.7-1\n"
    )
    markdown = nestcustom(
        "diff", "recipes/old.yaml", "recipes/new.yaml", "--format", "markdown", cwd=two_recipes
    )
    assert "**1 added, 2 removed, 1 upgraded**" in markdown.stdout
    assert "| upgraded | `jq` | 1.6-1 | 1.7-1 |" in markdown.stdout


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("recipes/old.yaml", "recipes/none.yaml", "recipes/none.yaml: no such recipe file"),
        (
            "recipes/old.yaml",
            "localhost/web:1",
            "recipes/old.yaml is a recipe and localhost/web:1 an image: compare two of a kind",
        ),
        (
            "localhost/web:1",
            "recipes/old.yaml",
            "recipes/old.yaml is a recipe and localhost/web:1 an image: compare two of a kind",
        ),
        ("docker://", "docker://x", "'docker://' is not an image reference"),
        ("bad ref!", "other", "'bad ref!' is not an image reference"),
        ("localhost/x@sha256:0123", "y", "'localhost/x@sha256:0123' is not an image reference"),
    ],
)
def test_diff_refuses_bad_input_clearly(
    two_recipes: Path, old: str, new: str, message: str
) -> None:
    result = nestcustom("diff", old, new, cwd=two_recipes)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: {message}\n" in result.stderr


def test_diff_of_a_broken_recipe_is_located(two_recipes: Path) -> None:
    (two_recipes / "recipes" / "new.yaml").write_text("name: [\n")
    result = nestcustom("diff", "recipes/old.yaml", "recipes/new.yaml", cwd=two_recipes)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("recipes/new.yaml:2:1: not valid YAML")


def kmod_plan(project: Path, ids: dict[str, str]) -> list[StepKey]:
    recipe = load_recipe(project / "recipes" / "nestos-kmod.yaml", project).recipe
    inputs = image_inputs(recipe, project, ids, Provenance((), None))
    return step_keys(inputs, ids)


@pytest.fixture
def kmod_project(tmp_path: Path) -> Path:
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "recipes" / "nestos-kmod.yaml", tmp_path / "recipes")
    shutil.copytree(ROOT / "files" / "kmod", tmp_path / "files" / "kmod")
    return tmp_path


BASE_REF = "hub.oepkgs.net/nestos/nestos-test:22.03-LTS-SP2.20230922.0-x86_64"
BUILDER = "hub.oepkgs.net/nestos/kmod-builder:22.03-LTS-SP2-x86_64"
IDS = {BASE_REF: "b" * 64, BUILDER: "c" * 64}


def planned(steps: tuple[PlannedStep, ...]) -> list[tuple[str, str]]:
    return [(s.name, "cached" if s.cached else s.reason) for s in steps]


def test_plan_of_a_changed_builder_image_re_runs_its_stage_and_what_uses_it(
    kmod_project: Path,
) -> None:
    before = kmod_plan(kmod_project, IDS)
    after = kmod_plan(kmod_project, {**IDS, BUILDER: "d" * 64})
    assert planned(compare(before, before)) == [(k.name, "cached") for k in before]
    assert planned(compare(before, after)) == [
        ("stage nestcustom-facts", "cached"),
        ("facts", "cached"),
        ("stage kmod-build", f"the image {BUILDER} changed"),
        ("stage kmod-build file /src/nc_demo/nc_demo.c", "after stage kmod-build, which re-runs"),
        ("stage kmod-build file /src/nc_demo/Kbuild", "after stage kmod-build, which re-runs"),
        ("stage kmod-build facts", "after stage kmod-build, which re-runs"),
        ("stage kmod-build layer compile", "after stage kmod-build, which re-runs"),
        ("base", "cached"),
        ("kernel module /out/nc_demo.ko from kmod-build", "uses stage kmod-build, which re-runs"),
        ("kernel modules", "after kernel module /out/nc_demo.ko from kmod-build, which re-runs"),
        ("checks", "after kernel module /out/nc_demo.ko from kmod-build, which re-runs"),
        ("labels", "after kernel module /out/nc_demo.ko from kmod-build, which re-runs"),
    ]


def test_plan_of_a_changed_script_and_base(kmod_project: Path) -> None:
    before = kmod_plan(kmod_project, IDS)
    script = kmod_project / "files" / "kmod" / "build.sh"
    script.write_text(script.read_text() + "\n# changed\n")
    after = dict(planned(compare(before, kmod_plan(kmod_project, IDS))))
    assert after["stage kmod-build file /src/nc_demo/Kbuild"] == "cached"
    assert after["stage kmod-build layer compile"] == "content of files/kmod/build.sh changed"
    assert after["base"] == "cached"
    assert after["kernel module /out/nc_demo.ko from kmod-build"].startswith("uses stage")
    rebased = dict(planned(compare(before, kmod_plan(kmod_project, {**IDS, BASE_REF: "e" * 64}))))
    assert rebased["stage nestcustom-facts"] == "the base image changed"
    assert rebased["facts"] == "after stage nestcustom-facts, which re-runs"
    assert rebased["stage kmod-build"] == "cached"
    assert rebased["stage kmod-build facts"] == "uses stage nestcustom-facts, which re-runs"
    assert rebased["base"] == "the base image changed"
