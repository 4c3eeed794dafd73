"""`rechunk:` on real builds: the same files as the plain build, layers that follow content.

The trees are compared as podman shows them to a container (`podman export` of a container
made from each image): every path's type, mode, owner, content, link target and extended
attributes, and which paths are names of one file. That is the view `nestcustom test` and a
host's checkout start from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.test_host_layers import make_host, rebase
from tests.image.pushing import Pushed
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
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe
__all__ = ["project", "tag"]

LAYERS = (
    "  - {name: tools, install: [nc-hello, nc-scriptlet%s]}\n"
    "  - {name: service, install: [nc-sysuser]}\n"
    "  - {name: debug, install: [strace]}\n"
    "  - {name: slim, remove: [toolbox]}\n"
)
EXTRA = (
    "files:\n  - {src: files/motd, dest: /etc/motd}\n"
    "edits:\n  - {file: /etc/os-release, set: {VARIANT_ID: test}}\n"
    "systemd: {mask: [debug-shell.service]}\n"
)


def tree(reference: str, where: Path) -> tuple[dict[str, tuple[object, ...]], set[frozenset[str]]]:
    """Every path of the image as a container sees it, and its groups of hardlinked names."""
    container = podman("create", reference, "true").stdout.strip()
    try:
        archive = where / f"{container}.tar"
        done = podman("export", "-o", str(archive), container)
        assert done.returncode == 0, done.stderr
    finally:
        podman("rm", "-f", container)
    seen: dict[str, tuple[object, ...]] = {}
    links: dict[str, set[str]] = {}
    with tarfile.open(archive, encoding="utf-8", errors="surrogateescape") as export:
        for info in export:
            path = info.name.removeprefix("./").strip("/")
            xattrs = sorted(
                (k, v) for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")
            )
            if info.islnk():
                target = info.linkname.removeprefix("./").strip("/")
                links.setdefault(target, {target}).add(path)
                seen[path] = seen[target]
                continue
            content = ""
            if info.isfile():
                handle = export.extractfile(info)
                content = hashlib.sha256(handle.read() if handle else b"").hexdigest()
            seen[path] = (info.type, info.mode, info.uid, info.gid, info.linkname, content, xattrs)
    return seen, {frozenset(group) for group in links.values()}


def write(project: Path, base: str, repo: str, rechunk: bool, more: str = "") -> None:
    extra = EXTRA + ("rechunk: true\n" if rechunk else "")
    write_recipe(project, "chunky", base, repo, LAYERS % more, extra)
    git_commit(project)


def test_a_rechunked_image_holds_the_plain_builds_files_in_layers_that_follow_content(
    project: Path,
    rpm_repo_url: str,
    nestos_sp2_image: str,
    tag: str,
    tmp_path_factory: pytest.TempPathFactory,
    registry: Registry,
) -> None:
    scratch = tmp_path_factory.mktemp("rechunk")  # outside the project: its git tree stays clean
    write(project, nestos_sp2_image, rpm_repo_url, rechunk=False)
    done = nestcustom("build", "recipes/chunky.yaml", "--tag", f"{tag}-plain", cwd=project)
    assert done.returncode == 0, done.stderr
    write(project, nestos_sp2_image, rpm_repo_url, rechunk=True)
    done = nestcustom("build", "recipes/chunky.yaml", "--tag", tag, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "rechunk:" in done.stdout + done.stderr
    # The same inputs again, the tag gone (the build's steps come from the cache): the same
    # image, whatever the spool's or the export's order.
    first = image_id(tag)
    podman("untag", tag)
    done = nestcustom("build", "recipes/chunky.yaml", "--tag", tag, cwd=project)
    assert done.returncode == 0, done.stderr
    assert image_id(tag) == first
    assert "rechunk: as before" in done.stdout + done.stderr  # the warm build's shortcut
    # Cold, and with nothing remembered (no cache directory): every chunk made again.
    podman("untag", tag)
    fresh = dict(os.environ, XDG_CACHE_HOME=str(scratch / "fresh-cache"))
    done = nestcustom(
        "build", "recipes/chunky.yaml", "--tag", tag, "--no-cache", cwd=project, env=fresh
    )
    assert done.returncode == 0, done.stderr
    assert "rechunk: as before" not in done.stdout + done.stderr
    assert image_id(tag) == first

    plain, chunked = tree(f"{tag}-plain", scratch), tree(tag, scratch)
    assert set(chunked[0]) == set(plain[0])
    assert {p: v for p, v in chunked[0].items() if plain[0][p] != v} == {}
    assert chunked[1] == plain[1]

    layers = podman("image", "inspect", tag, "--format", "{{json .RootFS.Layers}}").stdout
    base_layers = podman(
        "image", "inspect", nestos_sp2_image, "--format", "{{json .RootFS.Layers}}"
    ).stdout
    assert layers.startswith(base_layers.strip().rstrip("]"))
    assert "io.nestcustom.rechunk" in labels_of(tag)

    # One package more in the first layer: its chunk and the state change, nothing else.
    before = _chunks(tag)
    write(project, nestos_sp2_image, rpm_repo_url, rechunk=True, more=", nc-optapp")
    done = nestcustom("build", "recipes/chunky.yaml", "--tag", f"{tag}-more", cwd=project)
    assert done.returncode == 0, done.stderr
    after = _chunks(f"{tag}-more")
    changed = sorted(name for layer, name in after.items() if layer not in before)
    assert changed == ["files 1: /usr/lib", "state"], (changed, sorted(before.values()))

    # A host on the first image (the test emulator imports layers as ostree-ext 0.9.1 does,
    # contract section 6) fetches exactly those two chunks to move to the second.
    first_pushed = push(registry, tag, "chunky:1")
    second_pushed = push(registry, f"{tag}-more", "chunky:2")
    base_count = len(first_pushed.layers) - len(before)
    origin = Pushed("base", first_pushed.layers[:base_count], first_pushed.sizes[:base_count])
    host = make_host(scratch / "host", registry, origin, "2022.16")
    rebase(host, first_pushed)
    host.boot()
    out = rebase(host, second_pushed)
    assert re.search(r"custom layers stored: \d+ needed: 2 \(", out), out
    fetched = host.fetched()[len(before) :]
    assert sorted(fetched) == sorted(set(second_pushed.layers) - set(first_pushed.layers))


def push(registry: Registry, reference: str, name: str) -> Pushed:
    """`reference` pushed as REGISTRY/rechunk/NAME, with its layers as the registry serves them."""
    target = f"{registry.host}/rechunk/{name}"
    done = podman("push", "--tls-verify=false", reference, target)
    assert done.returncode == 0, done.stderr
    repository, _, tag_name = f"rechunk/{name}".partition(":")
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag_name}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        layers = json.load(answer)["layers"]
    return Pushed(target, tuple(x["digest"] for x in layers), tuple(int(x["size"]) for x in layers))


def _chunks(reference: str) -> dict[str, str]:
    """Each chunk's diff id -> its name (the history entries rechunk wrote, in order)."""
    history = json.loads(
        podman("image", "inspect", reference, "--format", "{{json .History}}").stdout
    )
    names = [h["created_by"].removeprefix("nestcustom rechunk: ") for h in history
             if h.get("created_by", "").startswith("nestcustom rechunk: ")]  # fmt: skip
    return dict(zip(_layers(reference)[-len(names) :], names, strict=True))


def _layers(reference: str) -> list[str]:
    out = podman(
        "image", "inspect", reference, "--format", "{{range .RootFS.Layers}}{{.}} {{end}}"
    ).stdout
    return out.split()
