"""Build on mirrors: every image a recipe names, read from another registry, and
every download from another server.

Air-gapped sites (and the test universe) serve hub.oepkgs.net's images from
their own registry. `--mirror hub.oepkgs.net=registry.local:5000` rewrites the
base, builder stages and images files are copied from; digests stay, since a
mirror serves the same manifests. `--download-mirror https://github.com/=
https://artifacts.local/github/` does the same for downloads: the pinned sha256
still decides what is used, so a mirror cannot change the image's content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from nestcustom.errors import BadInputError
from nestcustom.recipe.model import FileSpec, Layer, Recipe

_URL_PREFIX = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/%+@!$&'()*,;:-]*)?$")
_HOST = re.compile(r"^[a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?$")


def parse_mirrors(pairs: Iterable[str]) -> dict[str, str]:
    """`REGISTRY=MIRROR` pairs -> {registry: mirror}; a located error for a bad pair."""
    mirrors: dict[str, str] = {}
    for pair in pairs:
        registry, sep, mirror = pair.partition("=")
        if not sep or not _HOST.match(registry) or not _HOST.match(mirror.split("/", 1)[0]):
            raise BadInputError(
                f"--mirror {pair!r} is not REGISTRY=MIRROR",
                "e.g. --mirror hub.oepkgs.net=registry.example.com:5000 (a path may follow "
                "the mirror's host: registry.example.com/oepkgs)",
            )
        mirrors[registry] = mirror
    return mirrors


def mirrored(reference: str, mirrors: Mapping[str, str]) -> str:
    registry, sep, rest = reference.partition("/")
    return f"{mirrors[registry]}/{rest}" if sep and registry in mirrors else reference


def with_mirrors(recipe: Recipe, mirrors: Mapping[str, str]) -> Recipe:
    """`recipe` with every image it names read from its mirror: the base, builder stages,
    images files or RPM files are copied from (a stage's name has no `/`: it stays)."""
    if not mirrors:
        return recipe

    def files(specs: tuple[FileSpec, ...]) -> tuple[FileSpec, ...]:
        return tuple(
            replace(f, source=mirrored(f.source, mirrors)) if f.source else f for f in specs
        )

    def layer(item: Layer) -> Layer:
        if not item.local_rpms:
            return item
        rpms = tuple(replace(r, source=mirrored(r.source, mirrors)) for r in item.local_rpms)
        return replace(item, local_rpms=rpms)

    return replace(
        recipe,
        base=replace(recipe.base, image=mirrored(recipe.base.image, mirrors)),
        stages=tuple(
            replace(s, image=mirrored(s.image, mirrors), files=files(s.files))
            for s in recipe.stages
        ),
        files=files(recipe.files),
        layers=tuple(layer(item) for item in recipe.layers),
    )


def parse_download_mirrors(pairs: Iterable[str]) -> dict[str, str]:
    """`PREFIX=MIRROR` pairs (URL prefixes) -> {prefix: mirror}; an error for a bad pair."""
    mirrors: dict[str, str] = {}
    for pair in pairs:
        prefix, sep, mirror = pair.partition("=")
        if not sep or not _URL_PREFIX.match(prefix) or not _URL_PREFIX.match(mirror):
            raise BadInputError(
                f"--download-mirror {pair!r} is not PREFIX=MIRROR",
                "two http or https URL prefixes, e.g. --download-mirror "
                "https://github.com/=https://artifacts.example.com/github/",
            )
        mirrors[prefix] = mirror
    return mirrors


def with_download_mirrors(recipe: Recipe, mirrors: Mapping[str, str]) -> Recipe:
    """Downloads read from the mirror of the longest prefix that begins their URL."""
    if not mirrors:
        return recipe

    def moved(url: str) -> str:
        prefixes = [p for p in mirrors if url.startswith(p)]
        if not prefixes:
            return url
        prefix = max(prefixes, key=len)
        return mirrors[prefix] + url[len(prefix) :]

    return replace(recipe, downloads=tuple(replace(d, url=moved(d.url)) for d in recipe.downloads))
