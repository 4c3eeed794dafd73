"""The build's progress, as the CLI shows it, up to the image (no podman): a real ISO made
here (root repodata, createrepo_c) whose `rpm` package is the host's rpm (as the bookworm
test ISO's is), resolved with dnf, installed in the namespace; the build is stopped at its
first "image" event, before anything is handed to podman. And the layer's progress."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nestcustom.base.pipeline import Event, Options, _counted, build_base
from nestcustom.base.variants import STANDARD
from tests.base.isomaker import make_iso
from tests.base.test_nsinstall_catch import host_bootstrap
from tests.gitops.rpms import Pkg, build_rpms

RPM_SPEC = """\
Name: rpm
Version: 4.18.0
Release: 1
Summary: the host's rpm, packaged as the ISO's
License: GPL
AutoReqProv: no
%description
rpm.
%install
cp -a {tree}/. %{{buildroot}}/
%files
"""


def test_the_layer_reports_progress_every_16_mb_in_whole_mb() -> None:
    chunks = [b"x" * 8_000_000] * 5  # 40 MB
    events: list[Event] = []
    passed = b"".join(_counted(iter(chunks), 40_000_000, events.append))
    assert len(passed) == 40_000_000  # every byte goes through, in order
    assert events == [
        Event("image", "MB of the layer", 16, 40),
        Event("image", "MB of the layer", 32, 40),
    ]


def test_a_small_layer_reports_nothing_and_exactly_16_mb_reports_once() -> None:
    events: list[Event] = []
    list(_counted(iter([b"x" * 15_999_999]), 15_999_999, events.append))
    assert events == []
    list(_counted(iter([b"x" * 16_000_000]), 16_000_000, events.append))
    assert events == [Event("image", "MB of the layer", 16, 16)]


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0 or shutil.which("dpkg") is None:
        pytest.skip("installing needs root and the host's rpm as a Debian package")
    work = tmp_path_factory.mktemp("pipeline")
    tree = work / "tree"
    host_bootstrap(tree)
    topdir = work / "rpmbuild"
    (topdir / "SPECS").mkdir(parents=True)
    spec = topdir / "SPECS" / "rpm.spec"
    top = "".join(f"/{p.name}\n" for p in sorted(tree.iterdir()))
    spec.write_text(RPM_SPEC.format(tree=tree) + top)
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--quiet",
            "--define",
            f"_topdir {topdir}",
            "--define",
            "_binary_payload w1.gzdio",
            "--define",
            "__os_install_post %{nil}",
            "--define",
            "debug_package %{nil}",
            "--define",
            "_build_id_links none",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )
    repo = work / "repo"
    (repo / "Packages").mkdir(parents=True)
    for rpm in (topdir / "RPMS").rglob("*.rpm"):
        shutil.copy2(rpm, repo / "Packages" / rpm.name)
    build_rpms([Pkg("nc-a"), Pkg("nc-b", "2.0", "3")], repo / "Packages", work / "image-rpms")
    subprocess.run(["createrepo_c", "--quiet", str(repo)], check=True, capture_output=True)
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    files["RPM-GPG-KEY-newstart"] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
    return make_iso(work / "NewStart-test-dvd.iso", files)


class BeforePodman(Exception):
    """Raised by the test's progress callback at the first image event."""


def test_a_build_reports_each_phase_and_each_package_then_cleans_up(
    iso: Path, tmp_path: Path
) -> None:
    events: list[Event] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if event.phase == "image":
            raise BeforePodman

    options = Options(iso, STANDARD, ("nc-a", "nc-b"), gpgcheck=False, workdir=tmp_path)
    with pytest.raises(BeforePodman):
        build_base(options, on_event)
    phases = [e.phase for e in events]
    assert phases[:4] == ["check", "read", "resolve", "resolve"]
    extracted = [(e.done, e.total, e.text) for e in events if e.phase == "extract"]
    assert [(done, total) for done, total, _ in extracted] == [(1, 3), (2, 3), (3, 3)]
    assert {name for _, _, name in extracted} == {"nc-a", "nc-b", "rpm"}
    assert Event("bootstrap", "unpacking the ISO's rpm (1 packages)") in events
    assert Event("install", "install") in events  # the namespace's phase lines
    assert Event("normalize", "normalize") in events
    installs = sorted((e.done, e.total, e.text) for e in events if e.phase == "install" and e.total)
    assert installs == [(1, 2, "nc-a-1.0-1.noarch"), (2, 2, "nc-b-2.0-3.noarch")] or installs == [
        (1, 2, "nc-b-2.0-3.noarch"),
        (2, 2, "nc-a-1.0-1.noarch"),
    ]
    assert phases[-4:] == ["clean", "tar", "image", "clean"]
    assert events[-1].text.startswith(f"removing the work directory {tmp_path}/nestcustom-base-")
    assert list(tmp_path.iterdir()) == []  # the stopped build left nothing in --workdir
