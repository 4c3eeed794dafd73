"""The build helper's `rpm-list`, `exec --rpms` and `--fetch ... gunzip`, run by a real POSIX
sh with the real rpm and curl: what a layer with RPM files from a stage installs, and a
single gzip-compressed download."""

from __future__ import annotations

import functools
import gzip
import hashlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import pytest

HELPER = str(resources.files("nestcustom.containerfile") / "build-helper.sh")
SPEC = """\
Name: {name}
Version: 1.0
Release: 1
Summary: test
License: MIT
BuildArch: noarch
%description
test
%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo {name} > %{{buildroot}}/usr/share/{name}/x
%files
/usr/share/{name}/x
"""


def helper(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", HELPER, *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two binary RPMs and a source RPM, built with rpmbuild."""
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (scripts/setup-host installs it)")
    top = tmp_path_factory.mktemp("rpmbuild")
    built: dict[str, Path] = {}
    for name in ("nc-one", "nc-two"):
        spec = top / f"{name}.spec"
        spec.write_text(SPEC.format(name=name))
        subprocess.run(
            ["rpmbuild", "-ba", "--define", f"_topdir {top}", "--define", "_build_id_links none",
             str(spec)],
            capture_output=True, check=True,
        )  # fmt: skip
        built[name] = next((top / "RPMS").rglob(f"{name}-*.rpm"))
        built[f"{name}.src"] = next((top / "SRPMS").rglob(f"{name}-*.src.rpm"))
    return built


def test_rpm_list_names_each_file_by_sha256_and_nevra_in_path_order(
    rpms: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "0").mkdir()
    shutil.copy(rpms["nc-two"], tmp_path / "0")
    shutil.copy(rpms["nc-one"], tmp_path / "1")
    done = helper("rpm-list", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "list").read_text().splitlines()
    two = hashlib.sha256(rpms["nc-two"].read_bytes()).hexdigest()
    assert lines == [
        f"{two} nc-two-1.0-1.noarch 0/{rpms['nc-two'].name}",
        f"{hashlib.sha256(rpms['nc-one'].read_bytes()).hexdigest()} nc-one-1.0-1.noarch "
        f"1/{rpms['nc-one'].name}",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1", "list"]
    # Listed again (a step run twice), the list is the same.
    assert helper("rpm-list", str(tmp_path)).returncode == 0
    assert (tmp_path / "list").read_text().splitlines() == lines
    # The layer's command gets them after its own arguments, in the list's order.
    shown = helper("exec", "--rpms", str(tmp_path), "echo", "install", "strace")
    assert shown.stdout.split() == [
        "install", "strace", f"{tmp_path}/0/{rpms['nc-two'].name}",
        f"{tmp_path}/1/{rpms['nc-one'].name}",
    ]  # fmt: skip


def test_rpm_list_refuses_a_source_rpm_a_non_rpm_and_a_source_that_matched_nothing(
    rpms: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "0").mkdir()
    shutil.copy(rpms["nc-one.src"], tmp_path / "0")
    done = helper("rpm-list", str(tmp_path))
    assert done.returncode == 1
    assert f"0/{rpms['nc-one.src'].name} is a source RPM, which cannot be installed" in done.stderr
    (tmp_path / "0" / rpms["nc-one.src"].name).unlink()
    (tmp_path / "0" / "fake.rpm").write_text("not an rpm\n")
    done = helper("rpm-list", str(tmp_path))
    assert done.returncode == 1 and "0/fake.rpm is not an RPM file rpm can read" in done.stderr
    (tmp_path / "0" / "fake.rpm").unlink()
    done = helper("rpm-list", str(tmp_path))
    assert done.returncode == 1 and f"no RPM file in {tmp_path}/0" in done.stderr
    assert not (tmp_path / "list").exists()
    (tmp_path / "0").rmdir()  # no source at all
    done = helper("rpm-list", str(tmp_path))
    assert (done.returncode, done.stderr) == (1, "nestcustom: no RPM files to install\n")


def test_exec_without_the_stages_list_stops(tmp_path: Path) -> None:
    done = helper("exec", "--rpms", str(tmp_path), "echo", "x")
    assert done.returncode == 1
    assert f"no RPM list at {tmp_path}/list: the layer's RPM stage did not run" in done.stderr


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_a_gzip_download_is_checked_then_decompressed_into_place(
    site: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = site
    (root / "tool.gz").write_bytes(gzip.compress(b"#!/bin/sh\necho tool\n", mtime=0))
    pin = hashlib.sha256((root / "tool.gz").read_bytes()).hexdigest()
    dest = tmp_path / "out" / "bin" / "tool"
    done = helper("files", "--fetch", f"{url}/tool.gz", pin, str(dest), "0755", "gunzip")
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == b"#!/bin/sh\necho tool\n"
    assert dest.stat().st_mode & 0o777 == 0o755
    # Not gzip: a located failure, and nothing left at the destination.
    (root / "plain").write_text("plain\n")
    other = tmp_path / "other"
    pin = hashlib.sha256(b"plain\n").hexdigest()
    done = helper("files", "--fetch", f"{url}/plain", pin, str(other), "0644", "gunzip")
    assert done.returncode == 1
    assert f"{url}/plain is not a gzip-compressed file gzip can decompress" in done.stderr
    assert not other.exists() and not Path(f"{other}.nestcustom").exists()
