"""A `flavor: newstart` recipe builds on a base made from the ISO, and passes `nestcustom test`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.base.conftest import ROOT, Built, nestcustom, podman
from tests.universe.iso.build import Iso
from tests.universe.iso.mirror import publish_mirror, serve_iso
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe


def build_and_test_example(
    base: Built, iso: Iso, registry: Registry, built_images: list[str], tmp_path: Path
) -> tuple[str, str]:
    """recipes/newstart-tools.yaml built on `base` (its dnf installing from the ISO's
    repositories served here), pushed and tested; (the image's tag, the base's mirror)."""
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "recipes" / "newstart-tools.yaml", tmp_path / "recipes")
    shutil.copytree(ROOT / "files" / "newstart", tmp_path / "files" / "newstart")  # its script
    recipe = tmp_path / "recipes" / "newstart-tools.yaml"
    name = f"{iso.profile}-{iso.layout}"
    mirror = f"{registry.host}/newstart/mirror-{name}:test"
    tag = f"{registry.host}/custom/newstart-tools-{name}:test"
    built_images += [mirror, tag]
    with serve_iso(iso) as url:
        publish_mirror(base.tag, url, mirror)
        built = nestcustom(
            "--project", str(tmp_path), "build", str(recipe), "--base", mirror, "--tag", tag,
            "--no-tls-verify", "--push",
        )  # fmt: skip
        assert built.returncode == 0, built.stderr[-3000:]
    tested = nestcustom("--project", str(tmp_path), "test", str(recipe), "--image", tag)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "0 failed" in tested.stdout
    return tag, mirror


def test_newstart_example_recipe_builds_and_passes_its_tests(
    standard_core: Built,
    iso_treeinfo: Iso,
    registry: Registry,
    built_images: list[str],
    tmp_path: Path,
) -> None:
    tag, _ = build_and_test_example(standard_core, iso_treeinfo, registry, built_images, tmp_path)
    # the image's own rpm agrees: the recipe's changes are in its database
    listed = podman("run", "--rm", "--entrypoint", "rpm", tag, "-q", "strace", "jq", "less")
    assert "strace-6" in listed.stdout and "package less is not installed" in listed.stdout
