"""`nestcustom diff A B`: two images, or two recipes, compared by their packages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.gitops.imagedb import ImageDb, check_reference, open_image
from nestcustom.gitops.pkgdiff import PackageDiff, diff_packages, with_changelogs
from nestcustom.gitops.recipediff import RecipeDiff, diff_recipes
from nestcustom.image.rpmdb import read_changelogs, read_packages
from nestcustom.image.updatecost import UpdateCost, layers_to_fetch
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Recipe


@dataclass(frozen=True)
class ImageDiff:
    old: ImageDb
    new: ImageDb
    packages: PackageDiff
    counts: tuple[int, int]  # packages in old, in new
    update: UpdateCost | None = None  # None unless both are in a registry (compressed digests)


def update_cost(old: ImageDb, new: ImageDb) -> UpdateCost | None:
    """B's layers not among A's, by digest: only registry layers carry the compressed
    digests hosts key on (local storage has diff IDs and unpacked sizes)."""
    if old.where != "registry" or new.where != "registry":
        return None
    return layers_to_fetch(
        (layer.digest for layer in old.layers), [(layer.digest, layer.size) for layer in new.layers]
    )


def is_recipe(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) and Path(spec).is_file()


def diff_images(old_spec: str, new_spec: str, tls_verify: bool = True) -> ImageDiff:
    check_reference(old_spec)
    check_reference(new_spec)
    old = open_image(old_spec, tls_verify=tls_verify)
    new = open_image(new_spec, tls_verify=tls_verify)
    for image in (old, new):
        if image.db is None:
            raise NestcustomError(
                f"{image.reference}: no RPM database in its layers "
                "(looked in usr/share/rpm, usr/lib/sysimage/rpm, var/lib/rpm)",
                "diff compares RPM-based images such as NestOS and NewStart",
            )
    assert old.db is not None and new.db is not None
    before, after = read_packages(old.db), read_packages(new.db)
    packages = diff_packages(before, after)
    upgraded = [c.name for c in packages.of_kind("upgraded")]
    if upgraded:
        packages = with_changelogs(
            packages, read_changelogs(old.db, upgraded), read_changelogs(new.db, upgraded)
        )
    return ImageDiff(old, new, packages, (len(before), len(after)), update_cost(old, new))


def diff_recipe_files(old: Path, new: Path, project: Path | None) -> RecipeDiff:
    return diff_recipes(_load(old, project), _load(new, project))


def _load(path: Path, project: Path | None) -> Recipe:
    return load_recipe(path, project).recipe


def check_same_kind(old: str, new: str) -> bool:
    """True for two recipes, False for two images; mixing them is refused."""
    for spec in (old, new):
        if spec.endswith((".yaml", ".yml")) and not Path(spec).is_file():
            raise BadInputError(
                f"{spec}: no such recipe file",
                "diff takes two recipe files or two images (docker://REF, containers-storage:REF)",
            )
    a, b = is_recipe(old), is_recipe(new)
    if a != b:
        recipe, image = (old, new) if a else (new, old)
        raise BadInputError(
            f"{recipe} is a recipe and {image} an image: compare two of a kind",
            f"build the recipe first and diff the images, e.g. nestcustom diff {image} NEW-IMAGE",
        )
    return a
