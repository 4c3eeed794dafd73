"""Build pieces that need no podman: references, contexts, failure messages, provenance."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nestcustom.containerfile.render import render_containerfile
from nestcustom.git import _without_credentials
from nestcustom.image.build import Built, _explain_failure
from nestcustom.image.context import ContextFile, build_context
from nestcustom.image.events import BuildFailed, split_reference
from nestcustom.image.inputs import image_inputs, project_files, provenance
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("127.0.0.1:5000/custom/x:v1", ("127.0.0.1:5000/custom/x", "v1")),
        ("127.0.0.1:5000/custom/x", ("127.0.0.1:5000/custom/x", "latest")),
        ("localhost/nestcustom/x:latest", ("localhost/nestcustom/x", "latest")),
    ],
)
def test_split_reference(reference: str, expected: tuple[str, str]) -> None:
    assert split_reference(reference) == expected


def test_build_context_depends_on_content_only() -> None:
    files = [ContextFile("b/x", b"2"), ContextFile("Containerfile", b"FROM x\n")]
    first = build_context(files)
    assert first == build_context(list(reversed(files)))
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert [(m.name, m.mtime, m.uid) for m in tar.getmembers()] == [
            ("Containerfile", 0, 0),
            ("b/x", 0, 0),
        ]


def test_context_holds_exactly_what_the_containerfile_copies(
    write_recipe: WriteRecipe, project: Path
) -> None:
    (project / "unrelated.txt").write_text("must not be sent\n")
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nrepos: [{{id: x, baseurl: 'https://r/', gpgkey: 'https://r/k'}}]\n"
        "layers: [{name: a, install: [strace]}]\nfiles: [{src: files/motd, dest: /etc/motd}]\n"
    )
    recipe = load_recipe(path).recipe
    rendering = render_containerfile(recipe, "containerfiles/r")
    names = [f.path for f in project_files(recipe, rendering, project)]
    assert names == [
        "containerfiles/r/nestcustom.repo",
        "containerfiles/nestcustom-build.sh",
        "files/motd",
    ]
    inputs = image_inputs(recipe, project, {BASE: "0" * 64}, provenance(project))
    assert [f.path for f in inputs.files] == ["Containerfile", *names]


def test_inputs_change_with_a_file_mode_and_with_the_base_id(
    write_recipe: WriteRecipe, project: Path
) -> None:
    """A file made executable, or a new base under the same tag, is another build."""
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nfiles: [{{src: files/motd, dest: /etc/motd}}]\n"
    )
    recipe = load_recipe(path).recipe
    origin = provenance(project)

    def digest(base_id: str = "0" * 64) -> str:
        return image_inputs(recipe, project, {BASE: base_id}, origin).digest

    before = digest()
    assert digest() == before
    (project / "files" / "motd").chmod(0o755)
    made_executable = digest()
    assert made_executable != before
    assert digest("1" * 64) != made_executable


def test_failure_names_layer_line_and_program(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        f"name: r\nbase: {{image: {BASE}}}\nlayers:\n  - {{name: tools, install: [nope]}}\n"
    )
    recipe = load_recipe(path).recipe
    rendering = render_containerfile(recipe, "c")
    error = _explain_failure(
        recipe, rendering, BuildFailed("Packages not found: nope", None, 2, (), 4)
    )
    assert error.message.startswith("r: layer tools (")
    assert error.message.endswith(
        "recipes/r.yaml:4:5) failed at step 2/4: rpm-ostree: Packages not found: nope"
    )
    assert error.hint is not None and "check the package name" in error.hint
    committing = _explain_failure(
        recipe,
        rendering,
        BuildFailed(
            "Found content in var",
            None,
            2,
            ('Found file: "var/lib/x"', "error: Found content in var"),
        ),
    )
    assert "ostree container commit: Found content in var" in committing.message


def test_pinned_reference_drops_the_tag() -> None:
    built = Built(
        "x", "127.0.0.1:5000/custom/x:v1", "0" * 64, "sha256:" + "a" * 64, 1, 1, (), (), (), 0.0
    )
    assert built.pinned == "127.0.0.1:5000/custom/x@sha256:" + "a" * 64
    unpushed = Built("x", "localhost/x:v1", "0" * 64, None, 1, 1, (), (), (), 0.0)
    assert unpushed.pinned is None


def test_provenance_never_carries_credentials() -> None:
    assert (
        _without_credentials("https://user:token@git.example.com/org/repo.git")
        == "https://git.example.com/org/repo.git"
    )
    assert _without_credentials("git@example.com:org/repo.git") == "git@example.com:org/repo.git"


def test_created_label_is_the_commit_time_clean_or_dirty(tmp_path: Path) -> None:
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "r.yaml").write_text("x\n")
    subprocess.run([*git, "add", "-A"], check=True)
    env = {**os.environ, "GIT_COMMITTER_DATE": "2024-01-10T12:00:00+00:00"}
    subprocess.run([*git, "commit", "-qm", "r"], check=True, env=env)
    clean = dict(provenance(tmp_path).labels)
    assert clean["org.opencontainers.image.created"] == "2024-01-10T12:00:00Z"
    assert len(clean["org.opencontainers.image.revision"]) == 40
    assert provenance(tmp_path).epoch == int(
        datetime(2024, 1, 10, 12, tzinfo=timezone.utc).timestamp()
    )
    # A dirty tree is said by the revision; the time stays the commit's, so the
    # labels (and the image) do not change from one build to the next.
    (tmp_path / "r.yaml").write_text("changed\n")
    dirty = dict(provenance(tmp_path).labels)
    assert dirty["org.opencontainers.image.created"] == "2024-01-10T12:00:00Z"
    assert (
        dirty["org.opencontainers.image.revision"]
        == clean["org.opencontainers.image.revision"] + "-dirty"
    )
