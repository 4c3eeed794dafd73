"""Ring tags and their history: which digest each ring of an image was moved to, and from.

A ring is a tag of the image (`IMAGE:ring-stable`) that hosts follow by digest. Every
move is a row of a JSON Lines journal (a file a GitOps repository commits, so a
promotion is reviewed like any change): the image, the ring, the digest it had (None:
the tag did not exist) and the digest it got. `promote --undo` reads the journal back to
the ring's previous digest. Reading is strict: a row this module did not write is a
located error (FILE:LINE), never skipped.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from nestcustom.errors import BadInputError
from nestcustom.recipe.rings import RING_HINT, RING_NAME

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# An image name without tag or digest, as a registry names a repository (host[:port]/path).
REPOSITORY = re.compile(r"[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9._-]+)+")
_KEYS = {"time", "image", "ring", "before", "after", "undo"}


@dataclass(frozen=True)
class Promotion:
    """One move of a ring tag, as journalled."""

    time: str
    image: str  # the repository, without tag or digest
    ring: str
    before: str | None  # the digest the ring had; None when the tag did not exist
    after: str
    undo: bool = False


def ring_tag(ring: str) -> str:
    return f"ring-{ring}"


def check_ring(ring: str) -> str:
    if not RING_NAME.fullmatch(ring):
        raise BadInputError(f"{ring!r} is not a ring name", RING_HINT)
    return ring


def split_pinned(reference: str) -> tuple[str, str]:
    """(repository, digest) of IMAGE@sha256:HEX; anything else is refused with the form."""
    image, sep, digest = reference.partition("@")
    if not sep or not DIGEST.fullmatch(digest):
        raise BadInputError(
            f"{reference!r} is not IMAGE@sha256:DIGEST",
            "promote a digest, never a moving tag: e.g. the digest `nestcustom build --push` "
            "printed (registry.example.com/nestos/agent@sha256:...)",
        )
    return check_repository(image), digest


def check_repository(image: str) -> str:
    if not REPOSITORY.fullmatch(image):
        raise BadInputError(
            f"{image!r} is not an image name in a registry",
            "REGISTRY/PATH without a tag, e.g. registry.example.com/nestos/agent",
        )
    return image


def load(path: Path) -> list[Promotion]:
    """Every row of the journal at `path`, in order; no file is no promotion yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the promotion journal: {exc}") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            rows.append(_row(path, number, line))
    return rows


def _row(path: Path, number: int, line: str) -> Promotion:
    where = f"{path}:{number}"
    hint = "a promotion journal is written by nestcustom promote; restore the line from git"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{where}:{exc.colno}: not JSON: {exc.msg}", hint) from exc
    if not isinstance(row, dict) or set(row) != _KEYS:
        raise BadInputError(f"{where}: not a promotion (keys {sorted(_KEYS)})", hint)
    fine = (
        isinstance(row["time"], str)
        and isinstance(row["image"], str)
        and isinstance(row["ring"], str)
        and RING_NAME.fullmatch(row["ring"]) is not None
        and (
            row["before"] is None
            or (isinstance(row["before"], str) and DIGEST.fullmatch(row["before"]))
        )
        and isinstance(row["after"], str)
        and DIGEST.fullmatch(row["after"]) is not None
        and isinstance(row["undo"], bool)
    )
    if not fine:
        raise BadInputError(f"{where}: a promotion with a value of the wrong kind", hint)
    return Promotion(**row)


def record(path: Path, promotion: Promotion) -> None:
    """Append one row and flush it to disk before the command reports success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(promotion), sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def undo_target(history: list[Promotion], image: str, ring: str, current: str | None) -> str:
    """The digest `promote --undo` moves the ring back to.

    The ring's last journalled move must be what the registry serves now: a tag moved
    by someone else since is not ours to move back (the journal would lie). Undoing an
    undo is a promotion again, so the history is walked as a stack of moves.
    """
    moves = [p for p in history if p.image == image and p.ring == ring]
    if not moves:
        raise BadInputError(
            f"ring {ring} of {image} has no promotion in the journal",
            "check the ring's name and --journal; rings are made by nestcustom promote",
        )
    if moves[-1].after != current:
        raise BadInputError(
            f"ring {ring} of {image} serves {current or 'nothing'}, not {moves[-1].after} "
            "as the journal's last promotion says: it was moved by something else",
            f"promote the digest you want: nestcustom promote {image}@DIGEST --ring {ring}",
        )
    # Pop undone moves: an undo row cancels the move before it.
    stack: list[Promotion] = []
    for move in moves:
        if move.undo and stack:
            stack.pop()
        else:
            stack.append(move)
    if not stack or stack[-1].before is None:
        raise BadInputError(
            f"ring {ring} of {image} had no digest before {current}: nothing to go back to",
            f"promote another digest instead: nestcustom promote {image}@DIGEST --ring {ring}",
        )
    return stack[-1].before
