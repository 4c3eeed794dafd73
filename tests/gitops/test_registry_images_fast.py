"""`nestcustom diff` and `nestcustom sbom` of images in a registry, fast and without podman:
images with real rpmdbs in gzip layers, written here as OCI layouts and pushed with
skopeo to Debian's docker-registry; the commands read them as a user runs them.

Old image: the rpmdb of tests/gitops/test_rpmdb_fast.py's build_db in its bottom layer,
a file above it. New image: that layer, then a layer with the database after
`rpm -U` of nc-plain 3.1-1 (its changelog one entry longer), `rpm -i` of nc-new and `rpm -e`
of nc-sbom, and on top a layer that deletes the database's write-ahead log (a whiteout)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nestcustom.gitops.imagedb import open_image
from nestcustom.image.updatecost import human_size
from tests.gitops.helpers import nestcustom
from tests.gitops.rpms import Pkg, build_rpms
from tests.gitops.test_advisories_fast import served
from tests.gitops.test_rpmdb_fast import PLAIN_LOG, BuiltDb, build_db, noon
from tests.universe.registry import Registry, run_registry

__all__ = ["served"]  # a fixture used here

RPMDB = "usr/share/rpm"


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def push_image(
    registry: Registry, root: Path, reference: str, layers: list[dict[str, bytes]],
    labels: dict[str, str],
) -> tuple[str, list[int]]:  # fmt: skip
    """An image of gzip `layers` (path -> content, bottom first; b"" under a `.wh.` name is a
    whiteout) pushed as REGISTRY/`reference`: its manifest digest, and each layer's size."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    descriptors, diff_ids = [], []
    for files in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for path, content in files.items():
                info = tarfile.TarInfo(path)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        diff_ids.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            **_blob(root, gzip.compress(raw.getvalue(), mtime=0))})  # fmt: skip
    config = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **_blob(root, json.dumps(config).encode())},
        "layers": descriptors,
    }  # fmt: skip
    manifest_desc = _blob(root, json.dumps(manifest).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc}]}))  # fmt: skip
    subprocess.run(["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{root}", f"docker://{registry.host}/{reference}"],
                   check=True, capture_output=True)  # fmt: skip
    return str(manifest_desc["digest"]), [int(str(d["size"])) for d in descriptors]


@dataclass(frozen=True)
class Images:
    registry: Registry
    old: str  # docker://REGISTRY/gitops/images:old
    new: str
    new_digest: str
    sizes: dict[str, list[int]]  # compressed layer sizes, bottom first
    built: BuiltDb


def _db_files(directory: Path) -> dict[str, bytes]:
    return {f"{RPMDB}/{p.name}": p.read_bytes() for p in directory.iterdir()
            if p.is_file() and p.name != ".rpm.lock"}  # fmt: skip


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    work = tmp_path_factory.mktemp("images")
    built = build_db(work / "old")
    newer = build_rpms(
        [Pkg("nc-plain", "3.1", "1",
             (("Tue Dec 01 2026", "Carl <carl@nc.invalid> - 3.1-1", "- newer plain"),
              *PLAIN_LOG)),
         Pkg("nc-new", "1.0", "1")],
        work / "newer", work / "newer-build",
    )  # fmt: skip
    db = work / "new-db"
    shutil.copytree(built.directory, db)
    run = ["rpm", "--dbpath", str(db), "--justdb", "--nodeps", "--nosignature"]
    subprocess.run([*run, "-U", *map(str, newer)], check=True, capture_output=True)
    subprocess.run(
        [*run[:3], "-e", "--justdb", "--nodeps", "nc-sbom"], check=True, capture_output=True
    )
    new_files = _db_files(db)
    assert f"{RPMDB}/rpmdb.sqlite-wal" in new_files  # the top layer deletes it (a whiteout)
    base = {**_db_files(built.directory), "etc/os-release": b"NAME=test\n"}
    with run_registry(work / "registry") as registry:
        labels = {"org.opencontainers.image.created": "2026-11-30T10:00:00Z",
                  "io.nestcustom.recipe": "recipes/web.yaml"}  # fmt: skip
        _, old_sizes = push_image(registry, work / "oci-old", "gitops/images:old",
                                  [base, {"etc/motd": b"old\n"}], labels)  # fmt: skip
        new_digest, new_sizes = push_image(
            registry, work / "oci-new", "gitops/images:new",
            [base, new_files, {f"{RPMDB}/.wh.rpmdb.sqlite-wal": b"", "etc/motd": b"new\n"}],
            labels,
        )  # fmt: skip
        yield Images(registry, f"docker://{registry.host}/gitops/images:old",
                     f"docker://{registry.host}/gitops/images:new", new_digest,
                     {"old": old_sizes, "new": new_sizes}, built)  # fmt: skip


def test_only_the_layers_down_to_the_database_are_downloaded(images: Images) -> None:
    old = open_image(images.old, tls_verify=False)
    assert (old.where, old.layers_read, old.downloaded) == ("registry", 2, sum(images.sizes["old"]))
    assert [layer.size for layer in old.layers] == images.sizes["old"]
    assert old.db is not None and old.db.directory == RPMDB
    assert old.db.files == images.built.found.files
    new = open_image(images.new, tls_verify=False)
    assert (new.layers_read, new.downloaded) == (2, sum(images.sizes["new"][1:]))
    assert new.db is not None and sorted(new.db.files) == ["rpmdb.sqlite", "rpmdb.sqlite-shm"]


def test_diff_of_two_registry_images(images: Images) -> None:
    done = nestcustom("diff", images.old, images.new, "--no-tls-verify", "--format", "json",
                      cwd=Path.cwd())  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["changes"] == [
        {"kind": "added", "name": "nc-new", "arch": "noarch", "old": None, "new": "1.0-1",
         "changelog": []},
        {"kind": "upgraded", "name": "nc-plain", "arch": "noarch", "old": "3.0-7", "new": "3.1-1",
         "changelog": [{"time": noon(2026, 12, 1), "author": "Carl <carl@nc.invalid> - 3.1-1",
                        "text": "- newer plain"}]},
        {"kind": "removed", "name": "nc-sbom", "arch": "noarch", "old": "2:1.5-3", "new": None,
         "changelog": []},
    ]  # fmt: skip
    assert (report["a"]["packages"], report["b"]["packages"]) == (4, 4)  # with gpg-pubkey
    assert (report["b"]["layers_read"], report["b"]["downloaded"]) == (
        2,
        sum(images.sizes["new"][1:]),
    )
    # The base layer is the same blob in both: a host on A fetches the other two.
    assert report["update"] == {"layers": 2, "of": 3, "bytes": sum(images.sizes["new"][1:])}
    text = nestcustom("diff", images.old, images.new, "--no-tls-verify", cwd=Path.cwd())
    assert text.stdout.splitlines()[2] == (
        f"Update: a host on A downloads 2 of B's 3 layers, {human_size(sum(images.sizes['new'][1:]))} "
        "compressed (the layers it holds are kept by digest)"
    )
    assert text.stdout.splitlines()[3:] == [
        "Added (1):",
        "  nc-new.noarch 1.0-1",
        "Removed (1):",
        "  nc-sbom.noarch 2:1.5-3",
        "Upgraded (1):",
        "  nc-plain.noarch 3.0-7 -> 3.1-1",
        "      * Tue Dec 01 2026 Carl <carl@nc.invalid> - 3.1-1",
        "      - newer plain",
    ]


def test_sbom_of_a_registry_image(images: Images, tmp_path: Path) -> None:
    reference = images.new.removeprefix("docker://").replace(":new", f"@{images.new_digest}")
    out = tmp_path / "bom.json"
    done = nestcustom("sbom", f"docker://{reference}", "--no-tls-verify", "--format",
                      "cyclonedx", "-o", out, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    bom = json.loads(out.read_text())
    assert bom["metadata"]["component"]["name"] == reference
    assert bom["metadata"]["component"]["hashes"] == [
        {"alg": "SHA-256", "content": images.new_digest.removeprefix("sha256:")}
    ]
    assert bom["metadata"]["timestamp"] == "2026-11-30T10:00:00Z"
    assert bom["metadata"]["component"]["properties"] == [
        {"name": "nestcustom:io.nestcustom.recipe", "value": "recipes/web.yaml"}
    ]
    assert [(c["name"], c["version"]) for c in bom["components"]] == [
        ("libnc-sbom", "0.9-1"), ("nc-new", "1.0-1"), ("nc-plain", "3.1-1"),
    ]  # fmt: skip
    missing = nestcustom("sbom", images.new.replace(":new", ":nope"), "--no-tls-verify",
                         cwd=tmp_path)  # fmt: skip
    nope = images.new.replace(":new", ":nope")
    assert (missing.returncode, missing.stderr) == (
        2,
        f"error: {nope}: no such image\n  hint: podman images, or check the registry\n",
    )


def test_advisories_of_a_registry_image_fail_only_at_the_severity_asked(
    images: Images, served: str, tmp_path: Path
) -> None:
    repo = f"{served}/secure/"
    listed = nestcustom("advisories", images.old, "--repo", repo, "--no-tls-verify", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    # the most severe first; NCSA-5 names no severity
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "NCSA-2",
        "NCSA-1",
        "NCSA-5",
    ]
    for severity, code in (("critical", 1), ("important", 1), ("moderate", 1)):
        done = nestcustom("advisories", images.old, "--repo", repo, "--fail-on", severity,
                          "--no-tls-verify", cwd=tmp_path)  # fmt: skip
        assert done.returncode == code, (severity, done.stderr)
    # nc-sbom is gone from the new image, and nc-plain 3.1 is past NCSA-3's 3.0-7
    newer = nestcustom("advisories", images.new, "--repo", repo, "--no-tls-verify", cwd=tmp_path)
    assert [line.split()[0] for line in newer.stdout.splitlines()] == ["NCSA-2", "NCSA-5"]
    clean = nestcustom("advisories", images.old, "--repo", f"{served}/plain/", "--fail-on",
                       "low", "--no-tls-verify", cwd=tmp_path)  # fmt: skip
    assert (clean.returncode, clean.stdout) == (0, "")  # a repository without updateinfo
