"""`nestcustom diff` between two images built in the universe, from local storage and a registry.

The same recipe is built twice: the second time one package is added, one
removed and one upgraded (from another repository of the same packages). The
diff must show exactly those three changes, the upgrade with the changelog
entries between its two versions, and be the same read from podman's storage
and from the registry (where only the layers holding the RPM database come
over the network).
"""

from __future__ import annotations

import base64
import json
import os
import platform
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gitops.helpers import build, nestcustom
from tests.gitops.rpms import Pkg, served
from tests.universe.registry import Registry, run_registry

pytestmark = pytest.mark.universe

OLD_ENTRY = ("Mon Jan 05 2026", "Ann Packager <ann@example.com> - 1.0-1", "- first release")
NEW_ENTRY = (
    "Tue Nov 10 2026",
    "Bob Packager <bob@example.com> - 2.0-1",
    "- second release\n- fixes the greeting (CVE-2026-0001)",
)
REPO_A = [
    Pkg("nc-gitops-up", "1.0", "1", (OLD_ENTRY,)),
    Pkg("nc-gitops-gone"),
    Pkg("nc-gitops-same"),
]
REPO_B = [
    Pkg("nc-gitops-up", "2.0", "1", (NEW_ENTRY, OLD_ENTRY)),
    Pkg("nc-gitops-new"),
    Pkg("nc-gitops-same"),
]


def recipe(base: str, url: str, packages: list[str]) -> str:
    return (
        "name: gitops-diff\n"
        "description: the diff test's image\n"
        f'base: {{image: "{base}"}}\n'
        f'repos:\n  - {{id: ncgitops, baseurl: "{url}", gpgcheck: false}}\n'
        f"layers:\n  - {{name: apps, install: [{', '.join(packages)}]}}\n"
    )


@pytest.fixture(scope="module")
def two_images(
    tmp_path_factory: pytest.TempPathFactory, gitops_base: str, registry: Registry
) -> Iterator[tuple[str, str]]:
    """(old, new) references in the registry, also in local storage."""
    yield from _build_two(tmp_path_factory, gitops_base, registry)


def _build_two(
    tmp_path_factory: pytest.TempPathFactory, base: str, registry: Registry
) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("gitops-diff")
    project = tmp / "project"
    (project / "recipes").mkdir(parents=True)
    path = project / "recipes" / "gitops-diff.yaml"
    old, new, moving = (f"{registry.host}/gitops/diff:{tag}" for tag in ("v1", "v2", "moving"))
    with (
        served(REPO_A, tmp / "repo-a", tmp / "work-a") as url_a,
        served(REPO_B, tmp / "repo-b", tmp / "work-b") as url_b,
    ):
        a_packages = ["nc-gitops-up", "nc-gitops-gone", "nc-gitops-same"]
        b_packages = ["nc-gitops-up", "nc-gitops-new", "nc-gitops-same"]
        # A and B under their own tags, and both in turn under `moving`: the second push
        # there is the one build reports an update for.
        for reference, url, packages in (
            (old, url_a, a_packages),
            (moving, url_a, a_packages),
            (new, url_b, b_packages),
            (moving, url_b, b_packages),
        ):
            path.write_text(recipe(base, url, packages))
            built = build(
                path, "--tag", reference, "--push", "--no-tls-verify", "--json", cwd=project
            )
            assert built.returncode == 0, built.stderr
            PUSHED_TO_MOVING[url] = (built.stderr, json.loads(built.stdout)["images"][0])
    yield old, new
    subprocess.run(["podman", "rmi", "-f", old, new, moving], capture_output=True, check=False)


# The last build's stderr and --json entry for `moving`, by repository (A's, then B's).
PUSHED_TO_MOVING: dict[str, tuple[str, dict[str, Any]]] = {}


def diff(*args: str) -> subprocess.CompletedProcess[str]:
    return nestcustom("diff", *args, cwd=Path.cwd(), timeout=300)


EXPECTED = [
    {"kind": "added", "name": "nc-gitops-new", "arch": "noarch", "old": None, "new": "1.0-1"},
    {"kind": "removed", "name": "nc-gitops-gone", "arch": "noarch", "old": "1.0-1", "new": None},
    {"kind": "upgraded", "name": "nc-gitops-up", "arch": "noarch", "old": "1.0-1", "new": "2.0-1"},
]


def changes_of(document: dict[str, object]) -> list[dict[str, object]]:
    changes = document["changes"]
    assert isinstance(changes, list)
    return sorted(
        ({k: v for k, v in c.items() if k != "changelog"} for c in changes),
        key=lambda c: (str(c["kind"]), str(c["name"])),
    )


def test_diff_shows_exactly_the_changes_with_the_upgrades_changelog(
    two_images: tuple[str, str],
) -> None:
    old, new = two_images
    local = diff(f"containers-storage:{old}", f"containers-storage:{new}", "--format", "json")
    assert local.returncode == 0, local.stderr
    document = json.loads(local.stdout)
    assert changes_of(document) == EXPECTED
    upgraded = next(c for c in document["changes"] if c["kind"] == "upgraded")
    assert [(e["author"], e["text"]) for e in upgraded["changelog"]] == [
        (NEW_ENTRY[1], NEW_ENTRY[2])
    ]
    assert document["a"]["where"] == document["b"]["where"] == "local"
    for side, reference in (("a", old), ("b", new)):  # each layer, with its unpacked size
        inspected = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}", reference],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        layers = document[side]["layers"]
        assert [layer["digest"] for layer in layers] == json.loads(inspected.stdout)
        assert all(layer["size"] > 0 for layer in layers), layers
    assert document["b"]["packages"] == document["a"]["packages"]

    text = diff(f"containers-storage:{old}", f"containers-storage:{new}")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "Added (1):" in lines and "  nc-gitops-new.noarch 1.0-1" in lines
    assert "Removed (1):" in lines and "  nc-gitops-gone.noarch 1.0-1" in lines
    assert "Upgraded (1):" in lines and "  nc-gitops-up.noarch 1.0-1 -> 2.0-1" in lines
    assert "      * Tue Nov 10 2026 Bob Packager <bob@example.com> - 2.0-1" in lines
    assert "      - fixes the greeting (CVE-2026-0001)" in lines
    assert "first release" not in text.stdout
    assert "Downgraded" not in text.stdout


def test_the_registry_gives_the_same_diff_downloading_only_the_database_layers(
    two_images: tuple[str, str],
) -> None:
    old, new = two_images
    local = json.loads(
        diff(f"containers-storage:{old}", f"containers-storage:{new}", "--format", "json").stdout
    )
    remote = diff(f"docker://{old}", f"docker://{new}", "--no-tls-verify", "--format", "json")
    assert remote.returncode == 0, remote.stderr
    document = json.loads(remote.stdout)
    assert document["changes"] == local["changes"]
    for side in ("a", "b"):
        image = document[side]
        assert image["where"] == "registry"
        assert image["packages"] == local[side]["packages"]
        total = sum(layer["size"] for layer in image["layers"])
        assert len(image["layers"]) > 1
        assert image["layers_read"] < len(image["layers"])
        assert 0 < image["downloaded"] < total
    markdown = diff(f"docker://{old}", f"docker://{new}", "--no-tls-verify", "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert "| upgraded | `nc-gitops-up.noarch` | 1.0-1 | 2.0-1 |" in markdown.stdout
    assert "| added | `nc-gitops-new.noarch` |  | 1.0-1 |" in markdown.stdout
    assert "<summary>nc-gitops-up 1.0-1 → 2.0-1: changelog</summary>" in markdown.stdout


def test_build_says_what_hosts_on_the_tag_download_as_diff_does(
    two_images: tuple[str, str],
) -> None:
    """A push over a tag reports the layers a host running its image fetches (contract
    section 6): the same figure `diff` gives for the two images; a first push, none."""
    old, new = two_images
    (first_err, first), (second_err, second) = PUSHED_TO_MOVING.values()
    assert first["update"] is None and "update:" not in first_err
    remote = diff(f"docker://{old}", f"docker://{new}", "--no-tls-verify", "--format", "json")
    expected = json.loads(remote.stdout)["update"]
    update = second["update"]
    assert {k: update[k] for k in ("layers", "of", "bytes")} == expected
    assert 0 < update["layers"] < update["of"]  # the base's layers are held
    assert update["from"] == first["digest"] != second["digest"]
    assert (
        f"gitops-diff: update: a host on the image the tag named before ({first['digest'][:19]}) "
        f"downloads {update['layers']} of {update['of']} layers, "
    ) in second_err


def test_a_bare_reference_is_read_locally_and_a_missing_one_is_a_clear_error(
    two_images: tuple[str, str], registry: Registry
) -> None:
    old, new = two_images
    bare = diff(old, new, "--no-tls-verify", "--format", "json")
    assert bare.returncode == 0, bare.stderr
    assert json.loads(bare.stdout)["a"]["where"] == "local"
    missing = diff(old, f"containers-storage:{registry.host}/gitops/none:v9")
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert f"containers-storage:{registry.host}/gitops/none:v9: no such image in local storage" in (
        missing.stderr
    )
    unknown = diff(old, f"docker://{registry.host}/gitops/none:v9", "--no-tls-verify")
    assert unknown.returncode != 0
    assert "Traceback" not in unknown.stderr
    assert f"{registry.host}/gitops/none:v9" in unknown.stderr


def test_an_image_index_is_read_for_this_machines_architecture(
    two_images: tuple[str, str], registry: Registry
) -> None:
    old, new = two_images
    machine = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    other = "arm64" if machine == "amd64" else "amd64"
    index = f"localhost/nctest/gitops-index-{uuid.uuid4().hex[:8]}"
    pushed = f"{registry.host}/gitops/diff:index"

    def podman(*args: str) -> None:
        done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    try:
        podman("manifest", "create", index)
        podman("manifest", "add", "--arch", other, index, f"containers-storage:{new}")
        podman("manifest", "add", "--arch", machine, index, f"containers-storage:{old}")
        podman("manifest", "push", "--all", "--tls-verify=false", index, f"docker://{pushed}")
        same = diff(f"docker://{pushed}", f"docker://{old}", "--no-tls-verify")
        assert same.returncode == 0, same.stderr
        assert same.stdout.splitlines()[-1] == "No package changes."
    finally:
        subprocess.run(["podman", "manifest", "rm", index], capture_output=True, check=False)


def test_an_image_without_an_rpm_database_is_said_so(
    tmp_path: Path, two_images: tuple[str, str]
) -> None:
    (tmp_path / "hello").write_text("hi\n")
    subprocess.run(
        ["tar", "-C", str(tmp_path), "-cf", str(tmp_path / "l.tar"), "hello"], check=True
    )
    reference = f"localhost/nctest/gitops-norpm-{uuid.uuid4().hex[:8]}:1"
    subprocess.run(["podman", "import", "-q", str(tmp_path / "l.tar"), reference], check=True)
    try:
        result = diff(f"containers-storage:{reference}", f"containers-storage:{two_images[0]}")
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr == (
            f"error: {reference}: no RPM database in its layers "
            "(looked in usr/share/rpm, usr/lib/sysimage/rpm, var/lib/rpm)\n"
            "  hint: diff compares RPM-based images such as NestOS and NewStart\n"
        )
    finally:
        subprocess.run(["podman", "rmi", "-f", reference], capture_output=True, check=False)


def test_diff_from_a_registry_that_asks_for_a_login(
    tmp_path: Path, two_images: tuple[str, str]
) -> None:
    login = ("reviewer", "s3cret-pw")
    with run_registry(tmp_path / "locked", login=login) as locked:
        copies = [f"{locked.host}/gitops/diff:{tag}" for tag in ("v1", "v2")]
        for source, target in zip(two_images, copies, strict=True):
            subprocess.run(
                ["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-creds", ":".join(login),
                 f"containers-storage:{source}", f"docker://{target}"],
                check=True, capture_output=True,
            )  # fmt: skip
        auth = tmp_path / "auth.json"
        token = base64.b64encode(":".join(login).encode()).decode()
        auth.write_text(json.dumps({"auths": {locked.host: {"auth": token}}}))
        args = ["nestcustom", "diff", *(f"docker://{c}" for c in copies), "--no-tls-verify"]
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth)}
        done = subprocess.run(
            [sys.executable, "-m", *args, "--format", "json"],
            capture_output=True, text=True, env=env, check=False, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert changes_of(json.loads(done.stdout)) == EXPECTED
        env["REGISTRY_AUTH_FILE"] = str(tmp_path / "none.json")
        refused = subprocess.run(
            [sys.executable, "-m", *args],
            capture_output=True, text=True, env=env, check=False, timeout=300,
        )  # fmt: skip
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        assert f"error: cannot read the manifest of {copies[0]}" in refused.stderr
