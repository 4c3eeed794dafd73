"""The rechunk step against a stand-in for podman's API that keeps podman's rules for the
archives it exchanges (the real podman: tests/image/test_rechunk_universe.py): an export
holds `<diff id>.tar` layers and `<image id>.json`; a load takes an OCI archive whose
layers are either carried or already held, and names the image by its config's sha256."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image.rechunk import step
from nestcustom.image.rechunk.plan import Limits
from nestcustom.image.rechunk.step import MAX_STACK, RechunkError, rechunk
from tests.image.test_rechunk_readlayers import export, layer_tar

BASE = layer_tar(("usr", tarfile.DIRTYPE, None), ("usr/bin", tarfile.DIRTYPE, None), ("etc", tarfile.DIRTYPE, None),
                 ("etc/motd", tarfile.REGTYPE, b"base"))  # fmt: skip
CUSTOM = [
    layer_tar(
        ("usr/bin", tarfile.DIRTYPE, None),
        ("usr/bin/hello", tarfile.REGTYPE, b"hello"),
        ("etc", tarfile.DIRTYPE, None),
        ("etc/app.conf", tarfile.REGTYPE, b"conf"),
    ),
    layer_tar(("etc", tarfile.DIRTYPE, None), ("etc/.wh.motd", tarfile.REGTYPE, b"")),
]


class FakePodman:
    def __init__(self) -> None:
        config = {
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
            "config": {"Labels": {"io.nestcustom.inputs": "sha256:in"}},
        }
        self.ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in [BASE, *CUSTOM]]
        config["rootfs"]["diff_ids"] = self.ids  # type: ignore[index]
        self.archive, self.built, _ = export([BASE, *CUSTOM], json.dumps(config).encode())
        self.images: dict[str, list[str]] = {"base": self.ids[:1], self.built: self.ids}
        self.configs: dict[str, dict[str, Any]] = {self.built: config["config"]}  # type: ignore[dict-item]
        self.held = set(self.ids)
        self.loads = self.exports = 0

    def inspect(self, reference: str) -> dict[str, Any]:
        return {
            "Id": reference,
            "RootFS": {"Layers": self.images[reference]},
            "Config": self.configs.get(reference, {}),
        }

    def layer_sizes(self, reference: str) -> list[int]:
        return []

    def save_stream(self, image_id: str) -> Iterator[bytes]:
        self.exports += 1
        data = self.archive
        for at in range(0, len(data), 7000):
            yield data[at : at + 7000]

    def exists(self, reference: str) -> bool:
        return reference in self.images

    def load_stream(self, chunks: Iterable[bytes], name: str = "image") -> str:
        self.loads += 1
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            files = {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]
        manifest_digest = json.loads(files["index.json"])["manifests"][0]["digest"]
        manifest = json.loads(files["blobs/" + manifest_digest.replace(":", "/")])
        config = files["blobs/" + manifest["config"]["digest"].replace(":", "/")]
        layers = []
        for layer in manifest["layers"]:
            blob = files.get("blobs/" + layer["digest"].replace(":", "/"))
            if blob is None and layer["digest"] not in self.held:
                raise NestcustomError(f"blob {layer['digest']} not found")
            if blob is not None:
                assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
                self.held.add(layer["digest"])
            layers.append(layer["digest"])
        image = hashlib.sha256(config).hexdigest()
        self.images[image] = layers
        self.configs[image] = json.loads(config)["config"]
        return image


def run(podman: FakePodman, limits: Limits | None = None, stopped: Any = lambda: False) -> Any:
    lines: list[str] = []
    done = rechunk(podman, podman.built, "base", limits or Limits(), lines.append, stopped)  # type: ignore[arg-type]
    return done, lines


@pytest.fixture(autouse=True)
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spools = tmp_path / "tmp"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    return spools


def test_the_rechunked_image_is_loaded_on_the_base_and_the_spool_is_gone(own_tmp: Path) -> None:
    podman = FakePodman()
    done, lines = run(podman)
    assert podman.loads == 1
    layers = podman.images[done.image_id]
    assert layers[0] == podman.ids[0] and len(layers) == 1 + len(done.chunks)
    assert done.chunks == ("deletions", "files 1: /usr/bin", "files 2: /etc")
    assert lines[0] == f"rechunk: reading the 2 custom layer(s) of {podman.built[:12]}"
    assert lines[-1].startswith(
        f"rechunk: 3 chunk(s), {done.custom_bytes} bytes, image {done.image_id[:12]} ("
    )
    assert list(own_tmp.iterdir()) == []
    again, lines = run(podman)
    assert (again.image_id, again.chunks, podman.loads, podman.exports) == (
        done.image_id,
        done.chunks,
        1,
        1,
    )
    assert lines == [f"rechunk: as before, image {done.image_id[:12]}"]


def test_what_was_remembered_is_used_only_while_podman_holds_it_as_made(tmp_path: Path) -> None:
    podman = FakePodman()
    done, _ = run(podman)
    del podman.images[done.image_id]  # removed (podman image prune)
    again, _ = run(podman)
    assert (again.image_id, podman.loads, podman.exports) == (done.image_id, 2, 2)
    podman.configs[done.image_id] = {"Labels": {"io.nestcustom.inputs": "sha256:other"}}
    run(podman)
    assert podman.exports == 3
    memo = next((tmp_path / "cache" / "nestcustom" / "rechunk").glob("built-*"))
    memo.write_text("0" * 64)
    run(podman)
    assert podman.exports == 4


def test_an_image_not_on_its_base_is_refused_before_anything_is_read() -> None:
    podman = FakePodman()
    podman.images["base"] = ["sha256:" + "f" * 64]
    with pytest.raises(RechunkError, match="does not start with the layers of base"):
        run(podman)


def test_more_layers_than_overlay_stacks_is_refused_with_the_most_that_fits() -> None:
    podman = FakePodman()
    with pytest.raises(
        RechunkError, match=f"more than podman's overlay stacks \\({MAX_STACK}\\)"
    ) as caught:
        run(podman, Limits(max_layers=MAX_STACK))
    assert caught.value.hint == f"set rechunk: {{max-layers: {MAX_STACK - 1}}} or less"


def test_a_stop_loads_nothing_and_leaves_no_spool(own_tmp: Path) -> None:
    podman = FakePodman()
    with pytest.raises(RechunkError, match="interrupted; nothing was loaded"):
        run(podman, stopped=lambda: True)
    assert podman.loads == 0
    assert list(own_tmp.iterdir()) == []


def test_a_load_that_names_another_image_is_an_error() -> None:
    podman = FakePodman()
    podman.load_stream = lambda chunks, name="image": "0" * 64  # type: ignore[method-assign]
    podman.exists = lambda reference: False  # type: ignore[method-assign]
    with pytest.raises(RechunkError, match="podman loaded 000000000000, not "):
        run(podman)


def test_a_full_disk_names_where_the_spool_was_and_leaves_nothing(
    own_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(step, "_write", full)
    podman = FakePodman()
    with pytest.raises(RechunkError, match=f"No space left on device in {own_tmp}$") as caught:
        run(podman)
    assert "set TMPDIR" in (caught.value.hint or "")
    assert (podman.loads, list(own_tmp.iterdir())) == (0, [])
