"""Build secrets: credentials a recipe's steps need, given at build time, never kept.

`nestcustom build --secret id=ID,src=FILE` (podman's syntax) gives the file's content
to every step that names ID (a layer's repo or a download with `secret: ID`), where it
is mounted at /run/secrets/ID for that step only. podman 4.3's API takes a secret as a
file at the top of the build context, which it moves out of the context before the
build starts, so no COPY can reach it; it is not part of the inputs digest either
(changing a password rebuilds nothing, as with podman build itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nestcustom.errors import BadInputError
from nestcustom.image.context import ContextFile
from nestcustom.recipe.model import Recipe

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EXAMPLE = "--secret id=repo-cred,src=/run/user/0/repo-cred (a file holding USER:PASSWORD)"


@dataclass(frozen=True)
class BuildSecret:
    id: str
    src: Path

    @property
    def context_name(self) -> str:
        """Where it travels in the build context (podman moves it out before the build)."""
        return f".nestcustom-secret-{self.id}"


def parse_secret(spec: str) -> BuildSecret:
    """`id=ID,src=FILE`, as `podman build --secret` takes it."""
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or key not in ("id", "src") or key in fields:
            raise BadInputError(
                f"--secret {spec!r}: write id=ID,src=FILE", f"for example {_EXAMPLE}"
            )
        fields[key] = value
    if set(fields) != {"id", "src"}:
        raise BadInputError(
            f"--secret {spec!r}: needs both id= and src=", f"for example {_EXAMPLE}"
        )
    if not _ID.match(fields["id"]):
        raise BadInputError(
            f"--secret {spec!r}: {fields['id']!r} is not a secret id",
            "letters, digits, '_', '.' and '-', as the recipe's secret: names it",
        )
    return BuildSecret(fields["id"], Path(fields["src"]).expanduser())


def unused_secrets(recipes: Iterable[Recipe], given: Sequence[BuildSecret]) -> list[str]:
    """Warnings for secrets given that no recipe names (a typo in an id, most likely)."""
    needed = {name for recipe in recipes for name in recipe.secrets}
    return [
        f"--secret id={s.id} is given, but no recipe names it (secret: {s.id})"
        for s in given
        if s.id not in needed
    ]


def check_secrets(recipes: Iterable[Recipe], given: Sequence[BuildSecret]) -> None:
    """Refuse a build whose recipes need a secret not given, or given unreadable."""
    by_id = {}
    for secret in given:
        if secret.id in by_id:
            raise BadInputError(f"--secret id={secret.id} is given twice")
        by_id[secret.id] = secret
    needed: dict[str, list[str]] = {}
    for recipe in recipes:
        for name in recipe.secrets:
            needed.setdefault(name, []).append(recipe.path)
    missing = sorted(set(needed) - set(by_id))
    if missing:
        raise BadInputError(
            "the build needs secret(s) that were not given: "
            + "; ".join(f"{name} ({', '.join(needed[name])})" for name in missing),
            "pass each as --secret id=ID,src=FILE (the file holds USER:PASSWORD)",
        )
    for name in needed:
        src = by_id[name].src
        try:
            content = src.read_bytes()
        except OSError as exc:
            raise BadInputError(
                f"--secret id={name}: cannot read {src}: {exc.strerror}",
                "give a readable file holding USER:PASSWORD",
            ) from exc
        if b":" not in content.split(b"\n", 1)[0]:
            raise BadInputError(
                f"--secret id={name}: {src} does not hold USER:PASSWORD on its first line"
            )


def secret_files(recipe: Recipe, given: Sequence[BuildSecret]) -> list[ContextFile]:
    """The secrets `recipe` needs, as the files podman's API takes them (mode 0600)."""
    by_id = {s.id: s for s in given}
    return [
        ContextFile(by_id[name].context_name, by_id[name].src.read_bytes(), 0o600)
        for name in recipe.secrets
    ]


def podman_secrets(recipe: Recipe, given: Sequence[BuildSecret]) -> list[str]:
    """The build's `secrets` parameter: `id=ID,src=NAME` with NAME in the context."""
    by_id = {s.id: s for s in given}
    return [f"id={name},src={by_id[name].context_name}" for name in recipe.secrets]
