"""SBOMs and security advisories of real images: the image's own RPM database, the universe
repository's updateinfo.xml (NCSA-2026-0001: nc-hello before 2.0), the build gate."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.image.universe import nestcustom, podman, project, write_recipe
from tests.universe.rpmrepo import UPDATEINFO, RpmRepo, serve_repo

pytestmark = pytest.mark.universe
__all__ = ["project"]

HELLO = "  - {name: a, install: [nc-hello]}\n"


def build(project: Path, name: str, tag: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return nestcustom("build", f"recipes/{name}.yaml", "--tag", tag, *extra, "--json", cwd=project)


def test_sbom_lists_the_images_own_packages_in_both_formats_and_refuses_an_image_without_rpmdb(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tmp_path: Path
) -> None:
    write_recipe(project, "listed", nestos_sp2_image, rpm_repo_url, HELLO)
    tag = "localhost/nctest/sbom-listed:1"
    try:
        assert build(project, "listed", tag).returncode == 0
        spdx = nestcustom("sbom", f"containers-storage:{tag}", cwd=project)
        assert spdx.returncode == 0, spdx.stderr
        document = json.loads(spdx.stdout)
        assert document["spdxVersion"] == "SPDX-2.3"
        packages = {p["name"]: p for p in document["packages"]}
        hello = packages["nc-hello"]
        assert hello["versionInfo"] == "1.0-1"
        assert "license=MIT" in hello["comment"] and "arch=noarch" in hello["comment"]
        assert hello["sourceInfo"] == "built from nc-hello-1.0-1.src.rpm"
        assert hello["externalRefs"][0]["referenceLocator"] == "pkg:rpm/nc-hello@1.0-1?arch=noarch"
        assert len(hello["checksums"][0]["checksumValue"]) == 64  # rpm's payload digest
        image = packages[tag]
        assert "io.nestcustom.recipe=recipes/listed.yaml" in image["comment"]
        assert packages[nestos_sp2_image]["primaryPackagePurpose"] == "CONTAINER"  # the base
        # The same count rpm itself gives for the image (gpg-pubkey entries are keys, not software).
        rpm_count = podman("run", "--rm", tag, "rpm", "-qa").stdout.split()
        assert len(document["packages"]) - 2 == len(
            [p for p in rpm_count if not p.startswith("gpg-pubkey")]
        )
        cdx = nestcustom(
            "sbom",
            f"containers-storage:{tag}",
            "--format",
            "cyclonedx",
            "-o",
            str(tmp_path / "bom.json"),
            "--json",
            cwd=project,
        )
        assert cdx.returncode == 0, cdx.stderr
        bom = json.loads((tmp_path / "bom.json").read_text())
        assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
        assert {c["name"]: c["version"] for c in bom["components"]}["nc-hello"] == "1.0-1"
        assert json.loads(cdx.stdout)["document"] == bom
        # Same image, same document: no clock in it.
        again = nestcustom("sbom", f"containers-storage:{tag}", cwd=project)
        assert again.stdout == spdx.stdout
    finally:
        podman("rmi", "-f", tag)
    context = tmp_path / "scratch"
    context.mkdir()
    (context / "hello").write_text("no rpm here\n")
    (context / "Containerfile").write_text("FROM scratch\nCOPY hello /hello\n")
    assert podman("build", "-q", "-t", "localhost/nctest/no-rpmdb:1", str(context)).returncode == 0
    try:
        none = nestcustom(
            "sbom", "containers-storage:localhost/nctest/no-rpmdb:1", "--json", cwd=project
        )
        assert none.returncode == 2
        error = json.loads(none.stdout)["error"]
        assert error["kind"] == "bad-input" and "has no RPM database" in error["message"]
        assert "Traceback" not in none.stderr
    finally:
        podman("rmi", "-f", "localhost/nctest/no-rpmdb:1")


def fixed_repo(universe_repo: RpmRepo, where: Path) -> RpmRepo:
    """The universe repository once the fix is published: nc-hello 2.0 in it, same advisory."""
    shutil.copytree(universe_repo.path, where / "repo", ignore=shutil.ignore_patterns("repodata"))
    for rpm in universe_repo.extra_path.glob("nc-hello-2.0-*.rpm"):
        shutil.copy2(rpm, where / "repo" / rpm.name)
    (where / "repo" / "nc-hello-1.0-1.noarch.rpm").unlink()
    subprocess.run(["createrepo_c", "--quiet", "--no-database", str(where / "repo")], check=True)
    subprocess.run(
        ["modifyrepo_c", "--mdtype", "updateinfo", str(UPDATEINFO), str(where / "repo/repodata")],
        check=True,
    )
    (where / "extra").mkdir()
    return RpmRepo(where / "repo", where / "extra", {})


def test_an_exposed_image_is_listed_refused_by_the_gate_and_fixed_by_a_rebuild(
    project: Path, rpm_repo: RpmRepo, rpm_repo_url: str, nestos_sp2_image: str, tmp_path: Path
) -> None:
    write_recipe(project, "exposed", nestos_sp2_image, rpm_repo_url, HELLO)
    tag = "localhost/nctest/advisories-exposed:1"
    gated = "localhost/nctest/advisories-gated:1"
    try:
        assert build(project, "exposed", tag).returncode == 0
        listed = nestcustom("advisories", f"containers-storage:{tag}", "--json", cwd=project)
        assert listed.returncode == 0, listed.stderr
        document = json.loads(listed.stdout)
        assert document["repositories"] == [rpm_repo_url]
        assert [
            (a["id"], a["severity"], a["package"], a["installed"], a["fixed"])
            for a in document["advisories"]
        ] == [("NCSA-2026-0001", "important", "nc-hello", "1.0-1", "2.0-1")]
        assert document["advisories"][0]["cves"] == [
            "CVE-2026-0001"
        ]  # the bugfix one is not listed
        failing = nestcustom(
            "advisories", f"containers-storage:{tag}", "--fail-on", "important", cwd=project
        )
        assert failing.returncode == 1 and "NCSA-2026-0001" in failing.stdout
        # The gate: refused before the tag is set; a lower threshold lets it through.
        refused = build(project, "exposed", gated, "--fail-on", "important")
        assert refused.returncode == 1
        error = json.loads(refused.stdout)["images"][0]["error"]["message"]
        assert (
            "NCSA-2026-0001 (important) nc-hello 1.0-1 < 2.0-1" in error and "not tagged" in error
        )
        assert podman("image", "exists", gated).returncode != 0
        allowed = build(project, "exposed", gated, "--fail-on", "critical")
        assert allowed.returncode == 0, allowed.stderr
        # The same inputs again: nothing to build, and the image at the tag is judged too
        # (an advisory may come out after the build).
        again = build(project, "exposed", gated, "--fail-on", "important")
        assert again.returncode == 1, again.stdout
        error = json.loads(again.stdout)["images"][0]["error"]["message"]
        assert "NCSA-2026-0001" in error and "already at the tag" in error
        # The fix is published; a rebuild picks it up and passes the gate.
        with serve_repo(fixed_repo(rpm_repo, tmp_path)) as fixed_url:
            write_recipe(project, "exposed", nestos_sp2_image, fixed_url, HELLO)
            rebuilt = build(project, "exposed", gated, "--fail-on", "important")
            assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
            clean = nestcustom("advisories", f"containers-storage:{gated}", "--json", cwd=project)
            assert json.loads(clean.stdout)["advisories"] == []
            version = podman("run", "--rm", gated, "rpm", "-q", "nc-hello").stdout.strip()
            assert version == "nc-hello-2.0-1.noarch"
    finally:
        podman("rmi", "-f", tag, gated)


def test_advisories_bad_input_is_located(project: Path) -> None:
    bad = nestcustom("advisories", "not an image!", "--json", cwd=project)
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["kind"] == "bad-input"
    repo = nestcustom(
        "advisories",
        "containers-storage:localhost/nctest/none:1",
        "--repo",
        "ftp://x/",
        cwd=project,
    )
    assert repo.returncode == 2 and "Traceback" not in repo.stderr
