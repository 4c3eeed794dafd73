"""One content key per Containerfile step: its instruction and the bytes of what it reads.

A COPY reads its sources and a RUN its bind-mounted scripts, module files and
the build helper; a step's key covers the instruction's text and the content
of every context file it names, so a script edited without touching the
recipe still changes the step that runs it. The steps come in chains, one per
stage (`FROM ... AS name` starts one): podman's layer cache re-runs a step
when its key or an earlier step of its chain changed, or a stage it copies or
mounts from changed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nestcustom.image.inputs import ImageInputs, instructions


@dataclass(frozen=True)
class StepKey:
    index: int  # 1-based, as podman counts steps
    name: str  # the step's name as the build reports it ("layer tools", "file /etc/motd")
    instruction: str
    files: tuple[tuple[str, str], ...]  # (context path, sha256) of what it reads
    chain: str  # the stage it belongs to ("" for the image)
    uses: tuple[str, ...]  # stages it copies or mounts from

    @property
    def key(self) -> str:
        text = self.instruction + "\0" + "\0".join(f"{p}={h}" for p, h in self.files)
        return hashlib.sha256(text.encode()).hexdigest()


_STAGE = re.compile(r"^FROM\s+\S+\s+AS\s+(\S+)", re.IGNORECASE)
_FROM_STAGE = re.compile(r"(?:--from=|[ ,]from=)([A-Za-z0-9._-]+)")


def _names(path: str, instruction: str) -> bool:
    """Whether `instruction` names the context file `path` as a whole path."""
    return re.search(rf"(?:^|[\s=\"\[]){re.escape(path)}(?:$|[\s,\"\]])", instruction) is not None


BASE = "base image"


def _images_read(
    instruction: str, image_ids: Mapping[str, str], base: str
) -> list[tuple[str, str]]:
    """(what, ID) of every image the instruction builds from or mounts or copies from."""
    words = instruction.split()
    found = []
    for reference, image_id in image_ids.items():
        named = words[:2] == ["FROM", reference] or re.search(
            rf"(?:--from=|[ ,]from=){re.escape(reference)}(?=[\s,]|$)", instruction
        )
        if named:
            found.append((BASE if reference == base else f"image {reference}", image_id))
    return found


def step_keys(inputs: ImageInputs, image_ids: Mapping[str, str]) -> list[StepKey]:
    """The keys of `inputs`' steps; a step that reads an image (FROM, a mount or a COPY from
    it) also reads that image's ID, from `image_ids` (every image the rendering names)."""
    content = {
        f.path: hashlib.sha256(f.content).hexdigest()
        for f in inputs.files
        if f.path != "Containerfile"
    }
    names = [s.name for s in inputs.rendering.steps]
    keys: list[StepKey] = []
    chain = ""
    stages: set[str] = set()
    for index, instruction in enumerate(instructions(inputs.containerfile), start=1):
        if instruction.upper().startswith("FROM "):
            match = _STAGE.match(instruction)
            chain = match.group(1) if match else ""
            if chain:
                stages.add(chain)
        reads = tuple(sorted((p, h) for p, h in content.items() if _names(p, instruction)))
        reads = (*_images_read(instruction, image_ids, inputs.recipe.base.reference), *reads)
        uses = tuple(sorted({s for s in _FROM_STAGE.findall(instruction) if s in stages}))
        name = names[index - 1] if index <= len(names) else f"step {index}"
        keys.append(StepKey(index, name, instruction, reads, chain, uses))
    return keys
