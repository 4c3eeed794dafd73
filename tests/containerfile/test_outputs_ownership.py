"""`render --all` changes only what nestcustom wrote: a user's own files in containerfiles/
are never removed as orphans, nor overwritten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import BASE, WriteRecipe

GOOD = f"name: good\nbase: {{image: {BASE}}}\nlayers: [{{name: a, install: [strace]}}]\n"
SIGNED = (
    GOOD
    + "signing:\n  scopes: [{scope: registry.example.com/site, key: files/site.pub, type: sigstore}]\n"
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args], cwd=cwd, capture_output=True, text=True
    )


def test_a_users_own_files_are_no_orphans(write_recipe: WriteRecipe, project: Path) -> None:
    write_recipe(GOOD, "good")
    mine = project / "containerfiles" / "mine"
    mine.mkdir(parents=True)
    own = {
        mine / "Containerfile": "# my own image, built by hand\nFROM registry.example.com/x\n",
        mine / "policy.json": '{"default": [{"type": "reject"}]}\n',
        project / "containerfiles" / "NOTES.md": "# notes\n",
    }
    for path, text in own.items():
        path.write_text(text)
    assert run("render", "--all", cwd=project).returncode == 0
    check = run("render", "--all", "--check", cwd=project)
    assert check.returncode == 0, check.stderr
    for path, text in own.items():
        assert path.read_text() == text


def test_a_generated_policy_goes_with_its_recipe(write_recipe: WriteRecipe, project: Path) -> None:
    (project / "files" / "site.pub").write_text(
        "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n"
    )
    recipe = write_recipe(SIGNED, "good")
    assert run("render", "--all", cwd=project).returncode == 0
    policy = project / "containerfiles" / "good" / "policy.json"
    assert policy.is_file()
    recipe.unlink()
    write_recipe(GOOD.replace("name: good", "name: other"), "other")
    assert run("render", "--all", cwd=project).returncode == 0
    assert not policy.exists()
    assert not (project / "containerfiles" / "good").exists()


def test_a_users_file_where_a_recipe_renders_is_not_overwritten(
    write_recipe: WriteRecipe, project: Path
) -> None:
    write_recipe(GOOD, "good")
    target = project / "containerfiles" / "good" / "Containerfile"
    target.parent.mkdir(parents=True)
    target.write_text("# hand-written\nFROM scratch\n")
    result = run("render", "--all", cwd=project)
    assert result.returncode == 2
    assert "were not written by nestcustom: " in result.stderr
    assert "nothing was written" in result.stderr
    assert target.read_text() == "# hand-written\nFROM scratch\n"
    assert not (project / "containerfiles" / "nestcustom-build.sh").exists()
    check = run("render", "--all", "--check", cwd=project)
    assert check.returncode == 1
    assert (
        "containerfiles/good/Containerfile: in the way: not written by nestcustom" in check.stderr
    )
