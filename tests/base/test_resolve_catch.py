"""Resolving the package set with dnf (the system python's python3-dnf) against a real
repository made here with rpmbuild and createrepo_c: what the plan holds, where each
package lies on the ISO, and what the user is told when something does not resolve."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nestcustom.base.repos import Media, Release, Repo
from nestcustom.base.resolve import Package, Plan, resolve, system_python
from nestcustom.base.variants import OPTIMIZED, STANDARD
from nestcustom.errors import BadInputError, NestcustomError

# The ISO's rpm needs its library; `tool` needs a library and recommends its docs.
SPEC = """\
Name: rpm
Version: 4.14.3
Release: 19.el8
Summary: the ISO's rpm
License: GPL
BuildArch: noarch
Requires: rpm-libs
%description
rpm.
%package -n rpm-libs
Summary: rpm's library
%description -n rpm-libs
rpm-libs.
%package -n tool
Epoch: 1
Version: 2.0
Summary: a tool
Requires: libtool-x
Recommends: tool-doc
%description -n tool
tool.
%package -n libtool-x
Summary: its library
%description -n libtool-x
libtool-x.
%package -n tool-doc
Summary: its docs
%description -n tool-doc
tool-doc.
%package -n glibc-minimal-langpack
Summary: a langpack
%description -n glibc-minimal-langpack
langpack.
%package -n broken
Summary: needs what no one has
Requires: nowhere-to-be-found
%description -n broken
broken.
%install
mkdir -p %{buildroot}/usr/share/nc-resolve
for n in rpm rpm-libs tool libtool-x tool-doc langpack broken; do
  echo $n > %{buildroot}/usr/share/nc-resolve/$n
done
%files
/usr/share/nc-resolve/rpm
%files -n rpm-libs
/usr/share/nc-resolve/rpm-libs
%files -n tool
/usr/share/nc-resolve/tool
%files -n libtool-x
/usr/share/nc-resolve/libtool-x
%files -n tool-doc
/usr/share/nc-resolve/tool-doc
%files -n glibc-minimal-langpack
/usr/share/nc-resolve/langpack
%files -n broken
/usr/share/nc-resolve/broken
"""

# A package only an aarch64 ISO can install.
ARM_SPEC = """\
Name: armtool
Version: 1
Release: 1
Summary: for aarch64 only
License: GPL
%description
armtool.
%install
mkdir -p %{buildroot}/usr/share/nc-resolve
echo arm > %{buildroot}/usr/share/nc-resolve/armtool
%files
/usr/share/nc-resolve/armtool
"""


def _has_dnf() -> bool:
    for python in ("/usr/bin/python3", shutil.which("python3")):
        if (
            python
            and subprocess.run([python, "-c", "import dnf"], capture_output=True).returncode == 0
        ):
            return True
    return False


needs_dnf = pytest.mark.skipif(not _has_dnf(), reason="python3-dnf is not installed")


def _rpmbuild(spec: Path, topdir: Path, *extra: str) -> None:
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--quiet",
            "--define",
            f"_topdir {topdir}",
            "--define",
            "debug_package %{nil}",
            "--define",
            "_build_id_links none",
            "--define",
            "__os_install_post %{nil}",
            *extra,
            str(spec),
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository directory (repodata/ and the packages) as it lies on the ISO."""
    work = tmp_path_factory.mktemp("resolve")
    (work / "set.spec").write_text(SPEC)
    (work / "arm.spec").write_text(ARM_SPEC)
    _rpmbuild(work / "set.spec", work / "build")
    _rpmbuild(work / "arm.spec", work / "build", "--target", "aarch64")
    repo = work / "BaseOS"
    (repo / "Packages").mkdir(parents=True)
    for rpm in (work / "build" / "RPMS").rglob("*.rpm"):
        shutil.copy2(rpm, repo / "Packages" / rpm.name)
    subprocess.run(["createrepo_c", "--quiet", str(repo)], check=True, capture_output=True)
    return repo


def _media(path: str = "BaseOS", arch: str = "x86_64") -> Media:
    repos = (Repo("BaseOS", path, ("repodata/repomd.xml",), False, False),)
    return Media(repos, (), Release("NewStart CGS Linux", "6.06", arch, 1_700_000_000), "treeinfo")


def _names(packages: tuple[Package, ...]) -> list[str]:
    return [p.name for p in packages]


@needs_dnf
def test_the_plan_holds_the_closure_and_the_isos_rpm(repo: Path, tmp_path: Path) -> None:
    plan = resolve(_media(), {"BaseOS": repo}, ("tool",), STANDARD, tmp_path)
    assert isinstance(plan, Plan)
    assert _names(plan.packages) == ["libtool-x", "tool", "tool-doc"]  # sorted, weak dep in
    assert _names(plan.bootstrap) == ["rpm", "rpm-libs"]
    tool = plan.packages[1]
    assert (tool.epoch, tool.version, tool.release, tool.arch) == (1, "2.0", "19.el8", "noarch")
    assert tool.repo == "BaseOS"
    assert tool.location == "Packages/tool-2.0-19.el8.noarch.rpm"
    assert tool.path == "BaseOS/Packages/tool-2.0-19.el8.noarch.rpm"  # from the ISO's root
    rpm_file = repo / tool.location
    assert tool.size == rpm_file.stat().st_size
    assert tool.checksum_type == "sha256"
    digest = subprocess.run(["sha256sum", str(rpm_file)], capture_output=True, text=True)
    assert tool.checksum == digest.stdout.split()[0]


@needs_dnf
def test_a_repository_at_the_isos_root_gives_paths_without_a_prefix(
    repo: Path, tmp_path: Path
) -> None:
    plan = resolve(_media(path=""), {"BaseOS": repo}, ("tool",), STANDARD, tmp_path)
    assert [p.path for p in plan.bootstrap] == [
        "Packages/rpm-4.14.3-19.el8.noarch.rpm",
        "Packages/rpm-libs-4.14.3-19.el8.noarch.rpm",
    ]


@needs_dnf
def test_optimized_skips_weak_deps_and_takes_the_optional_langpack(
    repo: Path, tmp_path: Path
) -> None:
    plan = resolve(_media(), {"BaseOS": repo}, ("tool",), OPTIMIZED, tmp_path)
    assert _names(plan.packages) == ["glibc-minimal-langpack", "libtool-x", "tool"]


@needs_dnf
def test_the_isos_architecture_decides_what_installs(repo: Path, tmp_path: Path) -> None:
    plan = resolve(_media(arch="aarch64"), {"BaseOS": repo}, ("armtool",), STANDARD, tmp_path)
    assert [(p.name, p.arch) for p in plan.packages] == [("armtool", "aarch64")]
    with pytest.raises(BadInputError) as caught:
        resolve(_media(), {"BaseOS": repo}, ("armtool",), STANDARD, tmp_path / "x86")
    assert "armtool-1-1.aarch64 does not have a compatible architecture" in caught.value.message


@needs_dnf
def test_a_name_not_on_the_iso_is_named(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        resolve(_media(), {"BaseOS": repo}, ("tool", "vim-enhanced"), STANDARD, tmp_path)
    assert caught.value.message == "not on the ISO: vim-enhanced"
    assert "nothing was written" in str(caught.value.hint)


@needs_dnf
def test_a_missing_dependency_says_the_set_does_not_resolve(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        resolve(_media(), {"BaseOS": repo}, ("broken",), STANDARD, tmp_path)
    assert caught.value.message.startswith("the package set does not resolve:\n")
    assert "nowhere-to-be-found" in caught.value.message


@needs_dnf
def test_unreadable_repository_metadata_is_bad_input(repo: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(repo / "repodata", damaged / "repodata")
    for primary in (damaged / "repodata").glob("*primary.xml*"):
        primary.unlink()
    with pytest.raises(BadInputError) as caught:
        resolve(_media(), {"BaseOS": damaged}, ("tool",), STANDARD, tmp_path / "work")
    assert caught.value.message.startswith("the ISO's repository metadata cannot be read: ")


@pytest.mark.skipif(_has_dnf(), reason="this host has python3-dnf")
def test_without_python3_dnf_the_resolver_says_what_to_install() -> None:
    with pytest.raises(NestcustomError) as caught:
        system_python()
    assert (
        caught.value.message == "dnf's Python module is not installed (needed to resolve packages)"
    )
    assert caught.value.hint == "apt-get install python3-dnf, or run scripts/setup-host"
