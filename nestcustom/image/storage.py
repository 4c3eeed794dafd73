"""What podman's local storage holds, asked in one `podman image inspect` for many names.

Used before any build, so a run with nothing to build starts no API service
and imports no podman-py: one short podman process answers for every base
and every tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from nestcustom import proc


@dataclass(frozen=True)
class LocalImage:
    image_id: str
    labels: dict[str, str]
    names: tuple[str, ...]  # RepoTags and RepoDigests
    size: int = 0
    layers: int = 0


def normalize(reference: str) -> str:
    """A reference as podman lists it: registry host explicit, tag explicit."""
    name, at, digest = reference.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}{at}{digest}"


def local_images(references: Iterable[str]) -> dict[str, LocalImage]:
    """reference -> the local image it names, for each reference that names one."""
    wanted = list(dict.fromkeys(references))
    if not wanted:
        return {}
    podman = proc.require("podman", "podman")
    # Missing names make podman exit 125, after printing the ones it found.
    done = proc.run([podman, "image", "inspect", "--format", "json", *wanted], check=False)
    try:
        found = json.loads(done.stdout) if done.stdout.strip() else []
    except ValueError:
        found = []
    images = []
    for item in found:
        names = (*(item.get("RepoTags") or ()), *(item.get("RepoDigests") or ()))
        labels = (item.get("Config") or {}).get("Labels") or item.get("Labels") or {}
        images.append(
            LocalImage(
                str(item["Id"]),
                {str(k): str(v) for k, v in labels.items()},
                tuple(names),
                int(item.get("Size") or 0),
                len((item.get("RootFS") or {}).get("Layers") or ()),
            )
        )
    result = {}
    for reference in wanted:
        key = normalize(reference)
        bare = reference.removeprefix("sha256:")
        by_id = len(bare) >= 12 and all(c in "0123456789abcdef" for c in bare)
        for image in images:
            if key in image.names or (by_id and image.image_id.startswith(bare)):
                result[reference] = image
                break
    return result
