"""The signing: rules a schema cannot express: the key must be of the scope's type, and a
gpg scope needs the lookaside its hosts read signatures from."""

from __future__ import annotations

from collections.abc import Iterator

from nestcustom.errors import Problem
from nestcustom.keyformat import describe
from nestcustom.recipe.model import Recipe
from nestcustom.recipe.rules_common import Locate, Rule, problem

WANTED = {"gpg": "gpg-public", "sigstore": "sigstore-public"}


def signing_scopes(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    for index, scope in enumerate(recipe.signing.scopes):
        wanted = WANTED[scope.type]
        if scope.key_kind and scope.key_kind != wanted:
            other = next((t for t, k in WANTED.items() if k == scope.key_kind), None)
            hint = (
                f"say `type: {other}` for this scope"
                if other
                else "give the public key: `nestcustom keys generate` writes signing-key.pub.asc"
            )
            if scope.key_kind in ("gpg-secret", "sigstore"):
                hint = "never ship a private key in an image: give its public key"
            yield problem(
                locate,
                ("signing", "scopes", index, "key"),
                "signing-key",
                f"{scope.key.src} is {describe(scope.key_kind)}, not {describe(wanted)} "
                f"(type: {scope.type})",
                hint,
            )
        if scope.type == "gpg" and not scope.lookaside:
            yield problem(
                locate,
                ("signing", "scopes", index),
                "signing-lookaside",
                f"scope {scope.scope}: gpg signatures need a lookaside: the web server hosts "
                "read them from",
                "add lookaside: https://SERVER/PATH/ (where build --sign --signature-store "
                "puts them is published)",
            )
        if scope.type == "sigstore" and scope.lookaside:
            yield problem(
                locate,
                ("signing", "scopes", index, "lookaside"),
                "signing-lookaside",
                f"scope {scope.scope}: a sigstore signature is read from the registry, beside "
                "the image: a lookaside would never be used",
                "remove lookaside: (it is for type: gpg)",
            )


RULES: tuple[Rule, ...] = (signing_scopes,)
