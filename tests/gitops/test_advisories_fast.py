"""Security advisories judged against a real rpmdb, fast: a repository made with createrepo_c
and modifyrepo_c (updateinfo.xml), served over HTTP and read as file://, and the database
of tests/gitops/test_rpmdb_fast.py's build_db (nc-sbom 2:1.5-3, libnc-sbom 0.9-1,
nc-plain 3.0-7, all noarch).

Where the product asks podman about the local image (`podman image inspect` for its
overlay directories), the tests give that answer themselves, in podman's shape, for
directories made here: the reading that follows is the product's own."""

from __future__ import annotations

import bz2
import functools
import lzma
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.gitops import advisories, imagedb
from nestcustom.gitops.advisories import (
    Advisory,
    Exposure,
    Fix,
    _unpack,
    advisories_for,
    advisory_gate,
    image_repos,
    repo_advisories,
)
from nestcustom.gitops.imagedb import ImageDb
from nestcustom.image.rpmdb import Package
from tests.gitops.test_rpmdb_fast import BuiltDb, build_db
from tests.universe.httpserve import QuietHTTPServer

UPDATEINFO = """\
<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update type="security"><id>NCSA-1</id><title> nc-sbom: overflow </title>
    <severity>Important</severity>
    <references><reference id="CVE-2026-1" type="cve"/><reference id="BZ-9" type="bugzilla"/>
      <reference id="CVE-2026-2" type="cve"/></references>
    <pkglist><collection>
      <package name="nc-sbom" epoch="2" version="1.6" release="1" arch="noarch"/>
      <package name="not-installed" version="1" release="1" arch="noarch"/>
    </collection></pkglist></update>
  <update type="security"><id>NCSA-2</id><title>libnc-sbom: critical</title>
    <severity>Critical</severity>
    <pkglist><collection>
      <package name="libnc-sbom" epoch="0" version="0.9" release="2" arch="x86_64"/>
    </collection></pkglist></update>
  <update type="security"><id>NCSA-3</id><title>nc-plain: already fixed</title>
    <severity>Low</severity>
    <pkglist><collection>
      <package name="nc-plain" version="3.0" release="7" arch="noarch"/>
    </collection></pkglist></update>
  <update type="bugfix"><id>NCBA-4</id><title>nc-plain: a bug fix</title>
    <severity>Critical</severity>
    <pkglist><collection>
      <package name="nc-plain" version="9.0" release="1" arch="noarch"/>
    </collection></pkglist></update>
  <update type="security"><id>NCSA-5</id><title>nc-plain: epoch bump</title>
    <pkglist><collection>
      <package name="nc-plain" epoch="1" version="2.0" release="1" arch="noarch"/>
    </collection></pkglist></update>
</updates>
"""


def make_repo(path: Path, updateinfo: str | None) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["createrepo_c", "--quiet", str(path)], check=True, capture_output=True)
    if updateinfo is not None:
        (path.parent / f"{path.name}-updateinfo.xml").write_text(updateinfo)
        subprocess.run(["modifyrepo_c", "--mdtype", "updateinfo",
                        str(path.parent / f"{path.name}-updateinfo.xml"), str(path / "repodata")],
                       check=True, capture_output=True)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """http://127.0.0.1:PORT/ serving repos `secure/`, `plain/` (no updateinfo), `broken/`."""
    root = tmp_path_factory.mktemp("repos")
    make_repo(root / "secure", UPDATEINFO)
    make_repo(root / "plain", None)
    make_repo(root / "broken", "<updates><update type='security'>")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltDb:
    return build_db(tmp_path_factory.mktemp("advisories-rpmdb"))


def expected_advisories(repo: str) -> list[Advisory]:
    return [
        Advisory("NCSA-1", "important", "nc-sbom: overflow",
                 (Fix("nc-sbom", "noarch", "2:1.6-1"), Fix("not-installed", "noarch", "1-1")),
                 ("CVE-2026-1", "CVE-2026-2"), repo),
        Advisory("NCSA-2", "critical", "libnc-sbom: critical",
                 (Fix("libnc-sbom", "x86_64", "0.9-2"),), (), repo),
        Advisory("NCSA-3", "low", "nc-plain: already fixed", (Fix("nc-plain", "noarch", "3.0-7"),),
                 (), repo),
        Advisory("NCSA-5", "", "nc-plain: epoch bump", (Fix("nc-plain", "noarch", "1:2.0-1"),),
                 (), repo),
    ]  # fmt: skip


def test_the_security_advisories_of_a_repository(served: str, tmp_path: Path) -> None:
    url = f"{served}/secure/"
    assert repo_advisories(url) == expected_advisories(url)
    assert repo_advisories(f"{served}/plain") == []  # no updateinfo: no advisories


def test_a_repository_on_disk(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "disk", UPDATEINFO)
    url = f"file://{repo}"
    assert [a.id for a in repo_advisories(url)] == ["NCSA-1", "NCSA-2", "NCSA-3", "NCSA-5"]


def test_bad_repositories_are_located_errors(served: str) -> None:
    with pytest.raises(BadInputError) as bad:
        repo_advisories("ftp://mirror.example.com/repo")
    assert bad.value.message == (
        "'ftp://mirror.example.com/repo': a repository is an http(s):// or file:// URL"
    )
    with pytest.raises(NestcustomError) as missing:
        repo_advisories(f"{served}/nothing-here")
    assert missing.value.message == (
        f"cannot read {served}/nothing-here/repodata/repomd.xml: File not found"
    )
    assert missing.value.hint == "check the repository URL (and that it is reachable from here)"
    with pytest.raises(NestcustomError) as broken:
        repo_advisories(f"{served}/broken")
    assert broken.value.message.startswith(f"{served}/broken/repodata/")
    assert broken.value.message.endswith(
        "-broken-updateinfo.xml.gz:1:33: not well-formed XML: no element found: line 1, column 33"
    )


def test_compressed_updateinfo_of_each_kind() -> None:
    xml = UPDATEINFO.encode()
    assert _unpack(lzma.compress(xml), "repodata/x-updateinfo.xml.xz") == xml
    assert _unpack(bz2.compress(xml), "repodata/x-updateinfo.xml.bz2") == xml
    assert _unpack(xml, "repodata/updateinfo.xml") == xml
    with pytest.raises(NestcustomError) as zstd:
        _unpack(b"\x28\xb5\x2f\xfd", "repodata/x-updateinfo.xml.zst")
    assert zstd.value.message == (
        "repodata/x-updateinfo.xml.zst: zstd-compressed updateinfo is not read here"
    )


def test_exposures_of_the_installed_packages_most_severe_first(
    served: str, built: BuiltDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = "containers-storage:" + "a" * 64
    monkeypatch.setattr(
        advisories, "open_image", lambda s, tls_verify: ImageDb(s, "local", built.found, (), 1, 0)
    )
    url = f"{served}/secure"
    found, read = advisories_for(spec, (url, url))  # a repository named twice is read once
    assert read == [url, url]
    libnc, nc_sbom, nc_plain = (
        Package("libnc-sbom", "noarch", 0, "0.9", "1", 2),
        Package("nc-sbom", "noarch", 2, "1.5", "3", 2),
        Package("nc-plain", "noarch", 0, "3.0", "7", 64),
    )
    by_id = {a.id: a for a in expected_advisories(url)}
    assert found == [
        Exposure(by_id["NCSA-2"], libnc, Fix("libnc-sbom", "x86_64", "0.9-2")),  # noarch installed
        Exposure(by_id["NCSA-1"], nc_sbom, Fix("nc-sbom", "noarch", "2:1.6-1")),
        Exposure(by_id["NCSA-5"], nc_plain, Fix("nc-plain", "noarch", "1:2.0-1")),
    ]
    assert [e.as_dict() for e in found[1:]] == [
        {"id": "NCSA-1", "severity": "important", "title": "nc-sbom: overflow",
         "cves": ["CVE-2026-1", "CVE-2026-2"], "package": "nc-sbom", "arch": "noarch",
         "installed": "2:1.5-3", "fixed": "2:1.6-1", "repo": url},
        {"id": "NCSA-5", "severity": "unknown", "title": "nc-plain: epoch bump", "cves": [],
         "package": "nc-plain", "arch": "noarch", "installed": "3.0-7", "fixed": "1:2.0-1",
         "repo": url},
    ]  # fmt: skip


def test_the_build_gate_refuses_at_its_threshold(
    served: str, built: BuiltDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def open_image(spec: str, tls_verify: bool) -> ImageDb:
        opened.append(spec)
        return ImageDb(spec, "local", built.found, (), 1, 0)

    monkeypatch.setattr(advisories, "open_image", open_image)
    repos = (f"{served}/secure",)
    with pytest.raises(NestcustomError) as critical:
        advisory_gate("critical", repos)("recipes/web.yaml", "containers-storage:" + "f" * 64, True)
    assert opened == ["containers-storage:" + "f" * 64]
    assert critical.value.message == (
        "exposed to 1 security advisory of severity critical or higher: NCSA-2 (critical) "
        "libnc-sbom 0.9-1 < 0.9-2; not tagged, not pushed"
    )
    assert critical.value.hint == (
        "rebuild to get the fixed packages (build --no-cache if the layer is cached), "
        "or see `nestcustom advisories IMAGE`"
    )
    with pytest.raises(NestcustomError) as important:
        advisory_gate("important", repos)(
            "recipes/web.yaml", "containers-storage:" + "f" * 64, True
        )
    assert important.value.message == (
        "exposed to 2 security advisories of severity important or higher: NCSA-2 (critical) "
        "libnc-sbom 0.9-1 < 0.9-2, and 1 more; not tagged, not pushed"
    )
    # the only other exposure states no severity: below every threshold; clean repos pass
    advisory_gate("low", (f"{served}/plain",))(
        "recipes/web.yaml", "containers-storage:" + "f" * 64, True
    )
    with pytest.raises(NestcustomError) as low:
        advisory_gate("low", repos)("recipes/web.yaml", "containers-storage:" + "f" * 64, True)
    assert low.value.message.startswith("exposed to 2 security advisories of severity low ")


def test_an_image_without_rpm_database_has_no_advisories(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        advisories, "open_image", lambda s, tls_verify: ImageDb(s, "local", None, (), 2, 0)
    )
    with pytest.raises(BadInputError) as raised:
        advisories_for("containers-storage:scratch", ("file:///nowhere",))
    assert raised.value.message == "containers-storage:scratch: the image has no RPM database"


def layer(root: Path, repos: dict[str, str | None]) -> Path:
    """An overlay layer directory with /etc/yum.repos.d files; None: a whiteout file."""
    directory = root / "etc" / "yum.repos.d"
    directory.mkdir(parents=True)
    for name, text in repos.items():
        (directory / (name if text is not None else f".wh.{name}")).write_text(text or "")
    return root


def test_the_enabled_repositories_of_a_local_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = layer(tmp_path / "top", {
        "base.repo": "[base]\nbaseurl=https://mirror.example.com/base/$basearch/ \n"
                     "  https://second.example.com/base/\n"
                     "[debug]\nenabled=0\nbaseurl=https://mirror.example.com/debug/\n"
                     "[updates]\nenabled = true\nbaseurl=https://mirror.example.com/updates/\n"
                     "[nourl]\nmirrorlist=https://mirror.example.com/list\n",
        "gone.repo": None,
        "notes.txt": "[x]\nbaseurl=https://not-a-repo-file.example.com/\n",
        "broken.repo": "baseurl without a section\n",
    })  # fmt: skip
    lower = layer(tmp_path / "lower", {
        "base.repo": "[old]\nbaseurl=https://hidden-by-the-top-layer.example.com/\n",
        "gone.repo": "[gone]\nbaseurl=https://deleted-above.example.com/\n",
        "extra.repo": "[extra]\nenabled=1\nbaseurl=http://extra.example.com/$basearch\n",
    })  # fmt: skip
    asked: list[str] = []

    def inspect(reference: str) -> dict[str, object] | None:
        asked.append(reference)
        return {"GraphDriver": {"Name": "overlay",
                                "Data": {"UpperDir": str(top), "LowerDir": f"{lower}:{tmp_path / 'none'}"}}}  # fmt: skip

    monkeypatch.setattr(imagedb, "_inspect", inspect)
    assert image_repos("containers-storage:localhost/web:1") == [
        "https://mirror.example.com/base/x86_64/",
        "https://mirror.example.com/updates/",
        "http://extra.example.com/x86_64",
    ]
    assert asked == ["localhost/web:1"]
    assert (
        image_repos("localhost/web:1", "aarch64")[0] == "https://mirror.example.com/base/aarch64/"
    )

    monkeypatch.setattr(imagedb, "_inspect", lambda reference: None)
    with pytest.raises(BadInputError) as raised:
        image_repos("registry.example.com/web:1")
    assert raised.value.message == (
        "registry.example.com/web:1: the image's repositories can only be read from local storage"
    )
    assert raised.value.hint == "name the repositories with --repo URL"


def test_an_image_only_the_registry_holds_is_named_not_judged_without_repos(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its repositories are read from local storage: without --advisory-repo the gate
    says it did not judge it (and by digest, never tag@digest, which skopeo refuses)."""

    def open_image(spec: str, tls_verify: bool) -> ImageDb:
        raise AssertionError(f"read {spec}")

    monkeypatch.setattr(advisories, "open_image", open_image)
    spec = "docker://registry.example.com/nestos/web@sha256:" + "d" * 64
    advisory_gate("low", ())("recipes/web.yaml", spec, False)
    assert capsys.readouterr().err == (
        "warning: recipes/web.yaml: not judged for advisories: registry.example.com/nestos/web"
        "@sha256:" + "d" * 64 + " is only in the registry (give --advisory-repo URL to judge "
        "it there)\n"
    )
