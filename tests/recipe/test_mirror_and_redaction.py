"""Image references through --mirror (only a registry named there moves) and URLs shown
with their password hidden (all of it, whatever it contains)."""

from __future__ import annotations

from nestcustom.recipe.mirrors import mirrored
from nestcustom.recipe.rules_secrets import redacted

MIRRORS = {"hub.oepkgs.net": "127.0.0.1:5000/oe"}


def test_only_a_mirrored_registry_moves() -> None:
    assert (
        mirrored("hub.oepkgs.net/nestos/nestos:1", MIRRORS) == "127.0.0.1:5000/oe/nestos/nestos:1"
    )
    assert mirrored("docker.io/library/alpine:3", MIRRORS) == "docker.io/library/alpine:3"
    assert mirrored("localimage:1", MIRRORS) == "localimage:1"  # no registry part at all
    assert mirrored("hub.oepkgs.net", MIRRORS) == "hub.oepkgs.net"


def test_a_password_is_hidden_even_when_it_holds_an_at_sign() -> None:
    assert (
        redacted("https://ci:p@ss@git.example.com/r.git") == "https://ci:***@git.example.com/r.git"
    )
    assert redacted("https://ci:token@host:8443/x?y=1") == "https://ci:***@host:8443/x?y=1"
    assert redacted("https://ci@host/x") == "https://ci@host/x"  # no password: as it is
