"""Tests of the test universe's RPM repository (tests/universe/rpmrepo.py)."""

from __future__ import annotations

import configparser
import gzip
import json
import os
import platform
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .rpmrepo import RpmRepo, build_repo, repo_file, serve_repo

pytestmark = pytest.mark.universe

REPO_NS = {"repo": "http://linux.duke.edu/metadata/repo"}
COMMON_NS = {"common": "http://linux.duke.edu/metadata/common"}

EXPECTED = {
    "nc-hello",
    "nc-libgreet",
    "nc-scriptlet",
    "nc-varwriter",
    "nc-sysuser",
    "nc-optapp",
    "strace",
    "libunwind8",
    "jq",
    "libjq1",
    "libonig5",
}


def run(*cmd: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(c) for c in cmd], check=check, capture_output=True, text=True)


def rpm_file(repo: RpmRepo, name: str) -> Path:
    path = repo.path / f"{repo.packages[name]}.rpm"
    assert path.is_file(), path
    return path


def qp(rpm: Path, *query: str) -> list[str]:
    return run("rpm", "-qp", "--nosignature", *query, rpm).stdout.splitlines()


def requires(rpm: Path) -> set[str]:
    return {r.split()[0] for r in qp(rpm, "--requires") if not r.startswith("rpmlib(")}


def new_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    run("rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--initdb")
    return root


def rpm_install(root: Path, *rpms: Path, nodeps: bool = True) -> subprocess.CompletedProcess[str]:
    flags = ["--nodeps", "--noscripts"] if nodeps else ["--noscripts"]
    return run("rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-i", *flags, *rpms, check=False)


def host_is_bookworm() -> bool:
    try:
        debian = Path("/etc/debian_version").read_text()
    except OSError:
        return False
    return debian.startswith("12") and platform.machine() == "x86_64"


def test_package_map(rpm_repo: RpmRepo) -> None:
    assert set(rpm_repo.packages) == EXPECTED
    for name, nvra in rpm_repo.packages.items():
        rpm = rpm_file(rpm_repo, name)
        assert qp(rpm, "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}") == [nvra]
    assert rpm_repo.packages["nc-hello"] == "nc-hello-1.0-1.noarch"
    arch = platform.machine()
    assert rpm_repo.packages["strace"].endswith(f".{arch}")
    assert sorted(p.name for p in rpm_repo.path.glob("*.rpm")) == sorted(
        f"{nvra}.rpm" for nvra in rpm_repo.packages.values()
    )


def test_nc_hello(rpm_repo: RpmRepo, tmp_path: Path) -> None:
    rpm = rpm_file(rpm_repo, "nc-hello")
    assert "nc-libgreet" in requires(rpm)
    files = qp(rpm, "-l")
    assert "/usr/bin/nc-hello" in files
    assert "/usr/share/man/man1/nc-hello.1.gz" in files
    assert "/usr/share/doc/nc-hello/README" in qp(rpm, "-d")
    root = new_root(tmp_path)
    result = rpm_install(root, rpm, rpm_file(rpm_repo, "nc-libgreet"))
    assert result.returncode == 0, result.stderr
    assert (root / "usr/share/nc-libgreet/greeting").is_file()
    assert run("sh", root / "usr/bin/nc-hello").stdout == "hello from nc-hello 1.0\n"
    with gzip.open(root / "usr/share/man/man1/nc-hello.1.gz", "rt") as man:
        assert man.readline().startswith(".TH NC-HELLO 1")


def test_nc_hello_2_in_extra_only(rpm_repo: RpmRepo) -> None:
    extra = sorted(rpm_repo.extra_path.glob("*.rpm"))
    assert [p.name for p in extra] == ["nc-hello-2.0-1.noarch.rpm"]
    assert qp(extra[0], "--qf", "%{NAME} %{VERSION}-%{RELEASE}") == ["nc-hello 2.0-1"]
    assert "nc-libgreet" in requires(extra[0])
    assert not (rpm_repo.path / extra[0].name).exists()


def test_special_packages(rpm_repo: RpmRepo) -> None:
    assert "/var/lib/nc-varwriter/state" in qp(rpm_file(rpm_repo, "nc-varwriter"), "-l")
    assert "/opt/nc-optapp/bin/tool" in qp(rpm_file(rpm_repo, "nc-optapp"), "-l")

    sysuser = rpm_file(rpm_repo, "nc-sysuser")
    assert "/usr/lib/sysusers.d/nc-sysuser.conf" in qp(sysuser, "-l")
    scripts = "\n".join(qp(sysuser, "--scripts"))
    assert "preinstall scriptlet" in scripts
    assert "getent passwd ncsvc" in scripts and "useradd -r" in scripts

    scriptlet = rpm_file(rpm_repo, "nc-scriptlet")
    scripts = "\n".join(qp(scriptlet, "--scripts"))
    assert "postinstall scriptlet" in scripts and "preuninstall scriptlet" in scripts
    assert "/usr/share/nc-scriptlet/post-ran" in scripts
    assert "/usr/share/nc-scriptlet/post-ran" in qp(scriptlet, "-l")


def test_repodata_lists_every_package(rpm_repo: RpmRepo) -> None:
    repomd = ET.parse(rpm_repo.path / "repodata" / "repomd.xml").getroot()
    location = repomd.find("repo:data[@type='primary']/repo:location", REPO_NS)
    assert location is not None
    with gzip.open(rpm_repo.path / location.attrib["href"]) as f:
        primary = ET.parse(f).getroot()
    found = {}
    for pkg in primary.findall("common:package", COMMON_NS):
        name = pkg.findtext("common:name", namespaces=COMMON_NS)
        version = pkg.find("common:version", COMMON_NS)
        arch = pkg.findtext("common:arch", namespaces=COMMON_NS)
        assert name is not None and version is not None
        found[name] = f"{name}-{version.attrib['ver']}-{version.attrib['rel']}.{arch}"
    assert found == dict(rpm_repo.packages)


def test_serve_repo(rpm_repo: RpmRepo, rpm_repo_url: str) -> None:
    assert rpm_repo_url.startswith("http://127.0.0.1:") and rpm_repo_url.endswith("/")
    with urllib.request.urlopen(rpm_repo_url + "repodata/repomd.xml", timeout=10) as resp:
        assert resp.read() == (rpm_repo.path / "repodata" / "repomd.xml").read_bytes()
    name = f"{rpm_repo.packages['strace']}.rpm"
    with urllib.request.urlopen(rpm_repo_url + name, timeout=10) as resp:
        assert resp.read() == (rpm_repo.path / name).read_bytes()
    extra = "nc-hello-2.0-1.noarch.rpm"
    with urllib.request.urlopen(rpm_repo_url + "extra/" + extra, timeout=10) as resp:
        assert resp.read() == (rpm_repo.extra_path / extra).read_bytes()
    for missing in ("extra/" + rpm_repo.packages["strace"] + ".rpm", "no-such-file"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(rpm_repo_url + missing, timeout=10)
        assert err.value.code == 404


def test_serve_repo_stops(rpm_repo: RpmRepo) -> None:
    with (
        serve_repo(rpm_repo) as url,
        urllib.request.urlopen(url + "repodata/repomd.xml", timeout=10) as resp,
    ):
        assert resp.status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "repodata/repomd.xml", timeout=5)


def test_repo_file() -> None:
    text = repo_file("http://127.0.0.1:8080/", "myrepo")
    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert parser.sections() == ["myrepo"]
    section = parser["myrepo"]
    assert section["baseurl"] == "http://127.0.0.1:8080/"
    assert section["gpgcheck"] == "0" and section["enabled"] == "1"
    assert repo_file("http://x/").startswith("[nctest]\n")


def test_strace_installs_and_runs(rpm_repo: RpmRepo, tmp_path: Path) -> None:
    strace, libunwind = rpm_file(rpm_repo, "strace"), rpm_file(rpm_repo, "libunwind8")
    assert requires(strace) == {"libunwind8"}
    root = new_root(tmp_path)
    # Without --nodeps: strace alone misses libunwind8 ...
    alone = rpm_install(root, strace, nodeps=False)
    assert alone.returncode != 0 and "libunwind8 is needed" in alone.stderr
    # ... with it, the pair needs nothing the empty root lacks.
    result = rpm_install(root, strace, libunwind, nodeps=False)
    assert result.returncode == 0, result.stderr
    binary = root / "usr/bin/strace"
    assert binary.is_file() and os.access(binary, os.X_OK)
    installed = run("rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-qa").stdout.split()
    assert sorted(installed) == sorted(
        [rpm_repo.packages["strace"], rpm_repo.packages["libunwind8"]]
    )
    if not host_is_bookworm():
        pytest.skip("running the Debian 12 binaries needs a Debian 12 x86_64 host")
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / "usr/lib/x86_64-linux-gnu")}
    out = subprocess.run(
        [str(binary), "-V"], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert out.startswith("strace -- version 6.")


def test_jq_chain_installs_and_runs(rpm_repo: RpmRepo, tmp_path: Path) -> None:
    assert requires(rpm_file(rpm_repo, "jq")) == {"libjq1"}
    assert requires(rpm_file(rpm_repo, "libjq1")) == {"libonig5"}
    root = new_root(tmp_path)
    rpms = [rpm_file(rpm_repo, n) for n in ("jq", "libjq1", "libonig5")]
    result = rpm_install(root, *rpms, nodeps=False)
    assert result.returncode == 0, result.stderr
    if not host_is_bookworm():
        pytest.skip("running the Debian 12 binaries needs a Debian 12 x86_64 host")
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / "usr/lib/x86_64-linux-gnu")}
    out = subprocess.run(
        [str(root / "usr/bin/jq"), "-c", ".a"],
        input='{"a": [1, 2]}',
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert out == "[1,2]\n"


def test_build_repo_cache(rpm_repo: RpmRepo, tmp_path: Path) -> None:
    workdir = rpm_repo.path.parent
    rpms = sorted(rpm_repo.path.glob("*.rpm")) + sorted(rpm_repo.extra_path.glob("*.rpm"))
    mtimes = {p: p.stat().st_mtime_ns for p in rpms}
    start = time.monotonic()
    again = build_repo(workdir)
    assert time.monotonic() - start < 2
    assert again == rpm_repo
    assert {p: p.stat().st_mtime_ns for p in rpms} == mtimes

    # A copy is a cache hit too (the stamp holds no absolute paths) ...
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    copied = build_repo(copy)
    assert copied.path == copy / "repo" and copied.packages == rpm_repo.packages
    hello = copy / "repo" / f"{rpm_repo.packages['nc-hello']}.rpm"
    before = hello.stat().st_mtime_ns
    assert build_repo(copy) == copied and hello.stat().st_mtime_ns == before

    # ... until the inputs change (here: a stamp from other inputs) or files go missing.
    stamp = copy / "build-stamp.json"
    data = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**data, "inputs": "something else"}))
    time.sleep(0.01)
    rebuilt = build_repo(copy)
    assert rebuilt.packages == rpm_repo.packages
    assert hello.stat().st_mtime_ns != before
    assert json.loads(stamp.read_text())["inputs"] == data["inputs"]

    before = hello.stat().st_mtime_ns
    (copy / "extra" / "nc-hello-2.0-1.noarch.rpm").unlink()
    build_repo(copy)
    assert (copy / "extra" / "nc-hello-2.0-1.noarch.rpm").is_file()
    assert hello.stat().st_mtime_ns != before
