"""Pure parts of the base stage: cleaning a root, the image config, the archive stream."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from nestcustom.base import image as image_writer
from nestcustom.base import tarball
from nestcustom.base.slim import _category, clean_root, settle_times
from nestcustom.base.tarball import Layer
from nestcustom.base.variants import OPTIMIZED, STANDARD
from nestcustom.cli.main import cli
from nestcustom.errors import NestcustomError

SPEC = image_writer.ImageSpec(
    arch="x86_64",
    created=1699617600,
    labels=(("b", "2"), ("a", "1")),
    cmd=("/sbin/init",),
    healthcheck=("CMD", "systemctl", "is-system-running"),
    stop_signal="SIGRTMIN+3",
    history="nestcustom base from-iso x.iso --variant standard --packages @core",
)
DIFF_ID = "sha256:" + "ab" * 32


def test_config_is_a_pure_function_of_the_inputs() -> None:
    first = image_writer.config_json(SPEC, DIFF_ID)
    assert first == image_writer.config_json(SPEC, DIFF_ID)
    config = json.loads(first)
    assert config["architecture"] == "amd64"
    assert config["created"] == "2023-11-10T12:00:00Z"
    assert config["config"]["Healthcheck"]["Test"] == ["CMD", "systemctl", "is-system-running"]
    assert list(config["config"]["Labels"]) == ["a", "b"]
    assert config["rootfs"]["diff_ids"] == [DIFF_ID]
    assert "hostname" not in first.decode().lower()  # nothing of the machine that built it


def test_archive_stream_is_a_docker_archive_naming_the_layer_digest() -> None:
    content = b"x" * 1000 + b"y" * 24
    archive = image_writer.DockerArchive(
        SPEC, Layer(Path("/nonexistent"), len(content)), iter([b"x" * 1000, b"y" * 24])
    )
    with pytest.raises(RuntimeError):
        archive.image_id  # noqa: B018  # not known before the layer has gone by
    streamed = b"".join(archive)
    image_id = archive.image_id
    with tarfile.open(fileobj=io.BytesIO(streamed)) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config_bytes = tar.extractfile(f"{image_id}.json").read()  # type: ignore[union-attr]
        layer = tar.extractfile("layer.tar")
        stored = layer.read() if layer else b""
    assert names == ["layer.tar", f"{image_id}.json", "manifest.json"]
    assert manifest == [{"Config": f"{image_id}.json", "RepoTags": None, "Layers": ["layer.tar"]}]
    assert stored == content
    assert hashlib.sha256(config_bytes).hexdigest() == image_id
    assert json.loads(config_bytes)["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(content).hexdigest()
    ]


def test_layer_size_from_metadata_equals_the_streamed_tar(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"\x7fELF" + b"z" * 70_000)
    (root / "usr/bin/tool").chmod(0o4755)
    (root / "usr/bin/link").symlink_to("tool")
    (root / "etc").mkdir()
    (root / ("etc/a-very-long-file-name-" + "n" * 120)).write_text("long names take PAX headers")
    layer = tarball.size_layer(root)
    streamed = b"".join(tarball.layer_chunks(layer))
    assert len(streamed) == layer.size
    with tarfile.open(fileobj=io.BytesIO(streamed)) as tar:
        assert tar.getmember("./usr/bin/tool").mode == 0o4755
        assert tar.getmember("./usr/bin/link").linkname == "tool"


def test_a_root_that_changes_between_sizing_and_streaming_fails(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_bytes(b"a" * 10)
    layer = tarball.size_layer(root)
    (root / "grown").write_bytes(b"b" * 100_000)
    with pytest.raises(NestcustomError, match="changed while it was archived"):
        b"".join(tarball.layer_chunks(layer))


def test_categories_of_left_out_files() -> None:
    doc = 1 << 1
    assert _category(doc, "", "/usr/share/doc/bash/README") == "docs"
    assert _category(doc, "de", "/usr/share/man/de/man1/ls.1.gz") == "man_info"
    assert _category(0, "de", "/usr/share/locale/de/LC_MESSAGES/x.mo") == "locales"
    assert _category(0, "en_GB", "/usr/share/locale/en_GB/LC_MESSAGES/x.mo") is None
    assert _category(0, "", "/usr/lib/debug/usr/bin/x.debug") == "debug"
    assert _category(0, "", "/usr/bin/ls") is None


def _tree(root: Path) -> None:
    for path in ("etc", "var/log/dnf", "var/cache/dnf", "var/lib/rpm", "tmp", "run"):
        (root / path).mkdir(parents=True)
    (root / "etc/machine-id").write_text("0123456789abcdef\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\nncdata:!:20400::::::\n")
    (root / "etc/passwd-").write_text("old")
    (root / "var/log/dnf/dnf.log").write_text("log")
    (root / "var/log/lastlog").write_text("")
    (root / "var/cache/dnf/cache").write_text("cache" * 100)
    (root / "var/lib/rpm/rpmdb.sqlite").write_text("db")
    (root / "var/lib/rpm/rpmdb.sqlite-shm").write_text("shm")
    (root / "var/lib/rpm/.rpm.lock").write_text("")
    (root / "tmp/scratch").write_text("x")


def test_clean_removes_what_no_package_owns(tmp_path: Path) -> None:
    _tree(tmp_path)
    caches, logs = clean_root(
        tmp_path,
        owned=frozenset({"/var/log/lastlog", "/etc/shadow"}),
        dbpath="/var/lib/rpm",
        variant=STANDARD,
        source_date_epoch=1699617600,
    )
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert caches == (500, 1) and logs == (3, 1)
    assert (tmp_path / "var/log/lastlog").exists()  # owned: kept
    assert not (tmp_path / "var/cache/dnf").exists()
    assert not (tmp_path / "etc/passwd-").exists()
    assert not (tmp_path / "tmp/scratch").exists()
    assert sorted(p.name for p in (tmp_path / "var/lib/rpm").iterdir()) == ["rpmdb.sqlite"]
    # the day useradd wrote is clamped to the ISO's day (19671), older days stay
    assert (tmp_path / "etc/shadow").read_text().splitlines() == [
        "root:*:19000:0:99999:7:::",
        "ncdata:!:19671::::::",
    ]
    assert not (tmp_path / "etc/rpm").exists()


def test_optimized_writes_its_macros_into_the_image(tmp_path: Path) -> None:
    _tree(tmp_path)
    clean_root(
        tmp_path, owned=frozenset(), dbpath="/var/lib/rpm", variant=OPTIMIZED, source_date_epoch=0
    )
    assert (tmp_path / "etc/rpm/macros.image-nodocs").read_text() == "%_excludedocs 1\n"


def test_settle_times_touches_only_what_the_install_changed(tmp_path: Path) -> None:
    old, new = tmp_path / "from-package", tmp_path / "from-scriptlet"
    old.write_text("a")
    new.write_text("b")
    os.utime(old, (1_700_000_500, 1_700_000_500))
    os.utime(new, (1_800_000_000, 1_800_000_000))
    assert settle_times(tmp_path, since=1_750_000_000, epoch=1699617600) == 2  # new + the dir
    assert old.stat().st_mtime == 1_700_000_500
    assert new.stat().st_mtime == 1699617600


def test_cli_refuses_a_directory_and_a_zip_with_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["base", "from-iso", str(tmp_path)])
    assert done.exit_code == 2
    assert "is a directory, not an ISO image" in done.output
    fake = tmp_path / "dvd.iso"
    fake.write_bytes(b"PK\x03\x04" + bytes(40_000))
    done = runner.invoke(cli, ["base", "from-iso", str(fake)])
    assert done.exit_code == 2
    assert "ZIP archive" in done.output


def test_cli_push_needs_a_tag(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["base", "from-iso", str(tmp_path / "x.iso"), "--push"])
    assert done.exit_code == 2
    assert "--push needs --tag" in done.output
