"""A secret file that cannot be read is refused before any build, naming the file, the
reason and what to give instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.errors import BadInputError
from nestcustom.image.secrets import BuildSecret, check_secrets
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe


def test_an_unreadable_secret_file_is_named_with_what_to_give(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(
            f"name: r\nbase: {{image: {BASE}}}\ndownloads:\n"
            f'  - {{url: "https://d.example/x", sha256: "{"0" * 64}", dest: /usr/bin/x,'
            " secret: dl-cred}\n"
        )
    ).recipe
    missing = tmp_path / "gone"
    with pytest.raises(BadInputError) as caught:
        check_secrets([recipe], [BuildSecret("dl-cred", missing)])
    assert caught.value.message == (
        f"--secret id=dl-cred: cannot read {missing}: No such file or directory"
    )
    assert caught.value.hint == "give a readable file holding USER:PASSWORD"
