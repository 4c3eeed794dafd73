"""What a host that holds one image downloads to move to another (contract section 6).

A host keeps each layer by the digest of its compressed blob and skips one it holds,
whichever image brought it; a missing layer is downloaded whole. So an update costs the
compressed sizes of the new image's layers the old one lacks; the manifest and the
config (a few KB) come on top and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TagLayers:
    """What a registry serves under a tag: the manifest's digest and its layers'
    (digest, compressed size), bottom up."""

    digest: str
    layers: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class UpdateCost:
    layers: int  # the new image's layers a host on the old one fetches
    of: int  # the new image's layers
    size: int  # their compressed bytes


def layers_to_fetch(held: Iterable[str], layers: Sequence[tuple[str, int]]) -> UpdateCost:
    """`layers` (digest, compressed size) of the new image, bottom up; `held` the digests
    of the old image's layers."""
    have = set(held)
    missing = [size for digest, size in layers if digest not in have]
    return UpdateCost(len(missing), len(layers), sum(missing))


def manifest_layers(manifest: object) -> list[tuple[str, int]] | None:
    """(digest, size) of an image manifest's layers; None for anything else (an index)."""
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        return None
    found: list[tuple[str, int]] = []
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            return None
        size = layer.get("size")
        found.append((layer["digest"], size if isinstance(size, int) else 0))
    return found


def human_size(size: int) -> str:
    """Bytes as a person reads them: 512 B, 6.5 KB, 2.2 MB (powers of 1000; GB at most)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
