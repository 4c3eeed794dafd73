"""What podman's builds and pushes report, as values and errors (no podman-py needed)."""

from __future__ import annotations

from dataclasses import dataclass

from nestcustom.errors import NestcustomError


class PodmanUnavailable(NestcustomError):
    """No podman API could be reached or started."""


class BuildFailed(NestcustomError):
    """A build step failed; carries the step and the lines it printed."""

    def __init__(
        self,
        message: str,
        hint: str | None,
        step: int | None,
        output: tuple[str, ...],
        total: int = 0,
    ):
        super().__init__(message, hint)
        self.step = step
        self.total = total
        self.output = output


class PushFailed(NestcustomError):
    """The registry did not take the image."""


@dataclass(frozen=True)
class BuildEvent:
    """Something a build printed: a new step starting, or a line of its output."""

    step: int  # 1-based; 0 before the first step
    total: int
    text: str
    starts_step: bool = False


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    step_seconds: tuple[float, ...]
    cached_steps: tuple[int, ...]  # steps podman took from its layer cache


def split_reference(reference: str) -> tuple[str, str]:
    """`registry:5000/ns/name:tag` -> (`registry:5000/ns/name`, `tag`); tag defaults to latest."""
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = reference.rpartition(":")
        return repository, tag
    return reference, "latest"
