"""--mirror and --download-mirror: what a build reads from where."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.recipe.mirrors import (
    mirrored,
    parse_download_mirrors,
    parse_mirrors,
    with_download_mirrors,
    with_mirrors,
)
from nestcustom.recipe.model import Base, Download, FileSpec, Layer, LocalRpms, Recipe, Stage

VENDOR = "https://downloads.example.com/"


def recipe() -> Recipe:
    return Recipe(
        name="r",
        path="recipes/r.yaml",
        base=Base("hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"),
        stages=(Stage("build", "hub.oepkgs.net/openeuler/openeuler:22.03-lts"),),
        downloads=(
            Download(f"{VENDOR}tool/1/tool", "a" * 64, "/usr/bin/tool"),
            Download(f"{VENDOR}special/x.tar.gz", "b" * 64, "/usr/share/x", extract=True),
            Download("https://other.example.org/y", "c" * 64, "/usr/bin/y"),
        ),
    )


def test_images_are_read_from_the_registry_mirror() -> None:
    mirrored = with_mirrors(recipe(), parse_mirrors(["hub.oepkgs.net=127.0.0.1:5000/oe"]))
    assert mirrored.base.image == "127.0.0.1:5000/oe/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"
    assert mirrored.stages[0].image == "127.0.0.1:5000/oe/openeuler/openeuler:22.03-lts"


def test_files_copied_from_an_image_are_read_from_its_mirror() -> None:
    """`files: [{src: ..., from: IMAGE}]`: the image is read from the mirror, as the base
    is; a file from a builder stage or the project stays where it is."""
    files = (
        FileSpec(
            "/usr/bin/agent", "/usr/bin/agent", "0755", "", source="hub.oepkgs.net/tools/agent:1"
        ),
        FileSpec("/out/tool", "/usr/bin/tool", "0755", "", source="build"),
        FileSpec("files/motd", "/etc/motd", "0644", "d" * 64),
    )
    moved = with_mirrors(replace(recipe(), files=files), {"hub.oepkgs.net": "127.0.0.1:5000/oe"})
    assert [f.source for f in moved.files] == ["127.0.0.1:5000/oe/tools/agent:1", "build", None]


def test_rpm_files_and_a_stages_files_from_an_image_are_read_from_its_mirror() -> None:
    layer = Layer(
        "tools",
        local_rpms=(
            LocalRpms("hub.oepkgs.net/vendor/rpms:1", "/rpms/*.rpm"),
            LocalRpms("build", "/out/*.rpm"),  # a stage of the recipe
        ),
    )
    fetched = FileSpec("/src/x", "/src/x", "0644", "", source="hub.oepkgs.net/src/x:1")
    base = recipe()
    stage = replace(base.stages[0], files=(fetched,))
    moved = with_mirrors(
        replace(base, layers=(layer,), stages=(stage,)), {"hub.oepkgs.net": "127.0.0.1:5000/oe"}
    )
    assert [r.source for r in moved.layers[0].local_rpms] == [
        "127.0.0.1:5000/oe/vendor/rpms:1",
        "build",
    ]
    assert moved.stages[0].files[0].source == "127.0.0.1:5000/oe/src/x:1"


def test_downloads_are_read_from_the_mirror_of_the_longest_matching_prefix() -> None:
    mirrors = parse_download_mirrors(
        [f"{VENDOR}=http://127.0.0.1:8080/vendor/", f"{VENDOR}special/=http://10.0.0.9/sp/"]
    )
    urls = [d.url for d in with_download_mirrors(recipe(), mirrors).downloads]
    assert urls == [
        "http://127.0.0.1:8080/vendor/tool/1/tool",
        "http://10.0.0.9/sp/x.tar.gz",
        "https://other.example.org/y",  # no prefix matches: unchanged
    ]
    # the pins travel with the URLs: a mirror changes where, never what
    assert [d.sha256[0] for d in with_download_mirrors(recipe(), mirrors).downloads] == list("abc")
    assert with_download_mirrors(recipe(), {}) == recipe()


@pytest.mark.parametrize(
    "pair",
    [
        "https://downloads.example.com/",  # no =
        "downloads.example.com=http://127.0.0.1/",  # not a URL
        "https://a.example.com/=file:///srv/mirror/",  # the mirror must be http(s)
        "https://a.example.com/=http://127.0.0.1/a b/",  # a blank
    ],
)
def test_a_bad_download_mirror_is_refused_with_the_form_to_use(pair: str) -> None:
    with pytest.raises(BadInputError) as caught:
        parse_download_mirrors([pair])
    assert caught.value.message == f"--download-mirror {pair!r} is not PREFIX=MIRROR"
    assert "two http or https URL prefixes" in str(caught.value.hint)


def test_the_build_command_refuses_a_bad_download_mirror_before_any_build() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "nestcustom", "build", "recipes/nestos-downloads.yaml"),
            *("--download-mirror", "nonsense"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr
    assert "--download-mirror 'nonsense' is not PREFIX=MIRROR" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "reference",
    ["other.example.com/nestos/base:1", "base:1", "hub.oepkgs.net", "hub.oepkgs.net:443/x:1"],
)
def test_references_of_other_registries_are_left_alone(reference: str) -> None:
    assert mirrored(reference, {"hub.oepkgs.net": "127.0.0.1:5000"}) == reference
