"""Secrets do not belong in a recipe: what a recipe says is rendered into containerfiles/
(committed), the image's history and the build log.

A password in a repo or download URL is refused, shown redacted; `env:` names that look
like secrets get a warning (their values are in the image's history for anyone who can
pull it). Both point at build secrets: `nestcustom build --secret id=NAME,src=FILE`
with `secret: NAME` on the repo or download, bind-mounted into that one step only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from nestcustom.errors import Problem, Severity
from nestcustom.recipe.model import Layer, Recipe, Repo
from nestcustom.recipe.rules_common import Locate, is_rpm_url
from nestcustom.recipe.rules_common import problem as _problem

_SECRET_NAME = re.compile(
    r"(TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|API_?KEY|PRIVATE_?KEY|AUTH)", re.I
)
_HINT = (
    "give it to the build as a secret instead: `nestcustom build --secret id=NAME,src=FILE` "
    "and `secret: NAME` on the repo or download (mounted for that step only: never in a "
    "layer, the image's history, the log or containerfiles/)"
)

Path_ = tuple[str | int, ...]


def redacted(url: str) -> str:
    """`url` with its password shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)  # `user:@` holds no secret
    except ValueError:  # not a URL at all: the schema says so
        return False


def _repo_urls(repos: tuple[Repo, ...], where: Path_) -> Iterator[tuple[Path_, str]]:
    for i, repo in enumerate(repos):
        for field, url in (
            ("baseurl", repo.baseurl),
            ("metalink", repo.metalink),
            ("mirrorlist", repo.mirrorlist),
            ("gpgkey", repo.gpgkey),
        ):
            if url:
                yield (*where, i, field), url


def _layer_urls(layers: tuple[Layer, ...], where: Path_) -> Iterator[tuple[Path_, str]]:
    for i, layer in enumerate(layers):
        at = (*where, i)
        yield from _repo_urls(layer.repos, (*at, "repos"))
        for key, specs in (("install", layer.install), ("replace", layer.replace)):
            for j, spec in enumerate(specs):
                if is_rpm_url(spec):
                    yield (*at, key, j), spec
        for j, swap in enumerate(layer.swap):
            for k, spec in enumerate(swap.install):
                if is_rpm_url(spec):
                    yield (*at, "swap", j, "install", k), spec


def _urls(recipe: Recipe) -> Iterator[tuple[Path_, str]]:
    yield from _repo_urls(recipe.repos, ("repos",))
    for i, download in enumerate(recipe.downloads):
        yield ("downloads", i, "url"), download.url
    for i, repo_file in enumerate(recipe.repo_files):
        yield ("repo-files", i, "url"), repo_file.url
    yield from _layer_urls(recipe.layers, ("layers",))
    for i, stage in enumerate(recipe.stages):
        yield from _layer_urls(stage.layers, ("stages", i, "layers"))


def passwords_in_urls(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    for path, url in _urls(recipe):
        if _has_password(url):
            yield _problem(
                locate,
                path,
                "password-in-url",
                f"{redacted(url)}: a password in a URL would be written into containerfiles/, "
                "the image's history and the build log",
                _HINT,
            )


def secret_looking_env(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    stages = [(("stages", i, "layers"), s.layers) for i, s in enumerate(recipe.stages)]
    for where, layers in [(("layers",), recipe.layers), *stages]:
        for i, layer in enumerate(layers):
            for name, _ in layer.env:
                if _SECRET_NAME.search(name):
                    yield _problem(
                        locate,
                        (*where, i, "env", name),
                        "secret-in-env",
                        f"{name} looks like a secret: env: values are stored in the image's "
                        "history, readable by anyone who can pull the image",
                        _HINT,
                        Severity.WARNING,
                    )


def secrets_where_a_step_can_use_them(recipe: Recipe, locate: Locate) -> Iterator[Problem]:
    """A recipe's own repos are written into the image (for its hosts): no step holds
    their credentials. A repo that needs them is a layer's, used in its step only."""
    for i, repo in enumerate(recipe.repos):
        if repo.secret is not None:
            yield _problem(
                locate,
                ("repos", i, "secret"),
                "secret-on-image-repo",
                f"repo {repo.id!r} is written into the image for its hosts, without "
                "credentials: a secret: is for a repo the build uses",
                "move the repo under the layer that installs from it (layers[].repos: mounted "
                "for that step only, its credentials from the build secret)",
            )


RULES = (passwords_in_urls, secret_looking_env, secrets_where_a_step_can_use_them)
