"""Build secrets given on the command line: parsed as podman parses them, checked before any
build, and never part of the inputs digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.image.secrets import (
    BuildSecret,
    check_secrets,
    parse_secret,
    podman_secrets,
    secret_files,
    unused_secrets,
)
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

RECIPE = f"""\
name: r
base: {{image: {BASE}}}
layers:
  - name: a
    install: [agent]
    repos: [{{id: p, baseurl: "https://r.example/", gpgkey: "https://r.example/k", secret: repo-cred}}]
downloads:
  - {{url: "https://d.example/x", sha256: "{"0" * 64}", dest: /usr/bin/x, secret: dl-cred}}
  - {{url: "https://d.example/y", sha256: "{"1" * 64}", dest: /usr/bin/y, secret: repo-cred}}
"""


def test_parse_takes_podmans_form_only() -> None:
    assert parse_secret("id=repo-cred,src=/tmp/c") == BuildSecret("repo-cred", Path("/tmp/c"))
    assert parse_secret("src=/tmp/c,id=x") == BuildSecret("x", Path("/tmp/c"))
    for bad, says in (
        ("repo-cred", "write id=ID,src=FILE"),
        ("id=x", "needs both id= and src="),
        ("id=x,src=a,id=y", "write id=ID,src=FILE"),
        ("id=../x,src=a", "is not a secret id"),
        ("id=x,type=env,src=a", "write id=ID,src=FILE"),
    ):
        with pytest.raises(BadInputError, match=says):
            parse_secret(bad)


def test_a_recipes_secrets_are_checked_before_the_build(
    write_recipe: WriteRecipe, project: Path, tmp_path: Path
) -> None:
    recipe = load_recipe(write_recipe(RECIPE)).recipe
    assert recipe.secrets == ("dl-cred", "repo-cred")
    good = tmp_path / "cred"
    good.write_text("deploy:pw\n")
    with pytest.raises(BadInputError, match=r"not given: dl-cred \(recipes/r.yaml\)"):
        check_secrets([recipe], [BuildSecret("repo-cred", good)])
    with pytest.raises(BadInputError, match="cannot read"):
        check_secrets(
            [recipe], [BuildSecret("repo-cred", good), BuildSecret("dl-cred", tmp_path / "none")]
        )
    (tmp_path / "nocolon").write_text("just-a-token\n")
    with pytest.raises(BadInputError, match="does not hold USER:PASSWORD"):
        check_secrets(
            [recipe], [BuildSecret("repo-cred", good), BuildSecret("dl-cred", tmp_path / "nocolon")]
        )
    given = [
        BuildSecret("repo-cred", good),
        BuildSecret("dl-cred", good),
        BuildSecret("typo", good),
    ]
    check_secrets([recipe], given)
    assert unused_secrets([recipe], given) == [
        "--secret id=typo is given, but no recipe names it (secret: typo)"
    ]
    # each needed secret once, as a file at the context's top that podman moves out
    assert podman_secrets(recipe, given) == [
        "id=dl-cred,src=.nestcustom-secret-dl-cred",
        "id=repo-cred,src=.nestcustom-secret-repo-cred",
    ]
    files = secret_files(recipe, given)
    assert [(f.path, f.content, f.mode) for f in files] == [
        (".nestcustom-secret-dl-cred", b"deploy:pw\n", 0o600),
        (".nestcustom-secret-repo-cred", b"deploy:pw\n", 0o600),
    ]


def test_the_rendered_steps_name_secrets_by_id_only(
    write_recipe: WriteRecipe, project: Path
) -> None:
    from nestcustom.containerfile.render import render_containerfile

    recipe = load_recipe(write_recipe(RECIPE)).recipe
    text = render_containerfile(recipe, "containerfiles/r").containerfile
    assert text.count("--mount=type=secret,id=repo-cred") == 2  # the layer, the files step
    assert text.count("--mount=type=secret,id=dl-cred") == 1
    assert "repo-auth" in text and "rm -f /etc/yum.repos.d/nestcustom-a-p-" in text
    assert "--fetch-auth \\\n        /run/secrets/dl-cred" in text
