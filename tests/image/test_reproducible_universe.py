"""Same inputs, same image: cached or cold, in this storage or another, whatever the clock says.

A cold build must not depend on the clock (the rpm database's install times, the
password-change date of users added by scriptlets, file times), and a build that
takes steps from the cache must give what a cold build of the same commit gives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.universe import (
    git_commit,
    image_id,
    labels_of,
    nestcustom,
    podman,
    project,
    tag,
    write_recipe,
)

pytestmark = pytest.mark.universe
__all__ = ["project", "tag"]

# Packages with files, a scriptlet and a user (its shadow entry has a password-change date),
# a removal, files, an edit, a unit and the checks (rpm queries included).
LAYERS = (
    "  - {name: tools, install: [nc-hello, nc-scriptlet]}\n"
    "  - {name: service, install: [nc-sysuser]}\n"
    "  - {name: slim, remove: [toolbox]}\n"
)
FILES = (
    "files:\n  - {src: files/motd, dest: /etc/motd}\n"
    "edits:\n  - {file: /etc/os-release, set: {VARIANT_ID: test}}\n"
    "systemd: {mask: [debug-shell.service]}\n"
    "checks: {packages: [nc-hello, nc-sysuser]}\n"
)


def test_unchanged_recipe_builds_the_same_image_ten_times(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project,
        "same",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: hello, install: [nc-hello]}\n",
        "files:\n  - {src: files/motd, dest: /etc/motd}\n",
    )
    git_commit(project)
    ids = []
    for _ in range(10):
        result = nestcustom("build", "recipes/same.yaml", "--tag", tag, cwd=project)
        assert result.returncode == 0, result.stderr
        ids.append(image_id(tag))
        # Untagged, the image stays in the layer cache, and the next run must build
        # (not find its tag) and end on the same image.
        podman("untag", tag)
    assert len(set(ids)) == 1, ids
    podman("tag", ids[0], tag)
    # The files' and the config's time is fixed; the commit's time is in the label.
    created = podman("image", "inspect", tag, "--format", "{{.Created}}").stdout
    assert created.startswith("1970-01-01 00:00:00 +0000"), created
    labels = labels_of(tag)
    assert labels["org.opencontainers.image.created"] == "2024-01-10T12:00:00Z"
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/org/images.git"
    assert len(labels["org.opencontainers.image.revision"]) == 40


@contextlib.contextmanager
def _private_storage(base: str) -> Iterator[dict[str, str]]:
    """An environment whose podman (and nestcustom's service) uses an empty storage of its
    own, holding only `base` (copied in, so with the same ID)."""
    top = Path(tempfile.mkdtemp(prefix="nc-repro-storage-", dir="/var/tmp"))
    conf = top / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{top / "root"}"\nrunroot = "{top / "run"}"\n'
    )
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
    try:
        archive = top / "base.tar"
        saved = podman("save", "--format", "oci-archive", "-o", str(archive), base)
        assert saved.returncode == 0, saved.stderr
        loaded = subprocess.run(
            ["podman", "load", "-i", str(archive)], env=env, capture_output=True, text=True
        )
        assert loaded.returncode == 0, loaded.stderr
        archive.unlink()
        yield env
    finally:
        subprocess.run(["podman", "rmi", "-a", "-f"], env=env, capture_output=True, check=False)
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((p for p in mounts if p.startswith(f"{top}/")), reverse=True):
            subprocess.run(["umount", point], capture_output=True, check=False)
        shutil.rmtree(top, ignore_errors=True)


def _image_id(reference: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["podman", "image", "inspect", reference, "--format", "{{.Id}}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _build(project: Path, tag: str, *extra: str, env: dict[str, str] | None = None) -> str:
    result = nestcustom(
        "build", "recipes/repro.yaml", "--tag", tag, "--json", *extra, cwd=project, env=env
    )
    assert result.returncode == 0, result.stderr
    [summary] = json.loads(result.stdout)["images"]
    return str(summary["image_id"])


def test_cold_builds_give_one_image_here_and_in_another_storage(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(project, "repro", nestos_sp2_image, rpm_repo_url, LAYERS, FILES)
    git_commit(project)
    here = [_build(project, tag, "--no-cache")]
    time.sleep(1.1)  # the next build's clock is another second: install times would differ
    here.append(_build(project, tag, "--no-cache"))
    with _private_storage(nestos_sp2_image) as env:
        elsewhere = _build(project, tag, env=env)  # an empty storage: every step is cold
        assert _image_id(tag, env) == elsewhere
    assert here == [elsewhere, elsewhere], (here, elsewhere)


def test_cached_steps_of_an_earlier_commit_give_what_a_cold_build_gives(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(project, "repro", nestos_sp2_image, rpm_repo_url, LAYERS, FILES)
    git_commit(project, "first", when="2024-01-10T12:00:00+00:00")
    _build(project, tag, "--no-cache")
    # A later commit that changes only the motd: the package layers come from the cache,
    # built at the first commit; the image must still be the one a cold build makes.
    (project / "files" / "motd").write_text("changed a month later\n")
    git_commit(project, "second", when="2024-02-10T12:00:00+00:00")
    result = nestcustom("build", "recipes/repro.yaml", "--tag", tag, "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    [warm] = json.loads(result.stdout)["images"]
    cached = [s["name"] for s in warm["steps"] if s["cached"]]
    assert {"layer tools", "layer service"} <= set(cached), warm["steps"]
    with _private_storage(nestos_sp2_image) as env:
        cold = _build(project, tag, env=env)
    assert warm["image_id"] == cold
    assert labels_of(tag)["org.opencontainers.image.created"] == "2024-02-10T12:00:00Z"
