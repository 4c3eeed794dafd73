"""nestcustom test: testinfra checks of a built image, against real podman and the fixture base."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.recipe import load_recipe
from nestcustom.verify import VerifyReport, junit_xml, verify_image

pytestmark = pytest.mark.universe


def podman(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=600
    )
    if check and done.returncode:
        raise AssertionError(done.stderr)
    return done.stdout


def build(context: Path, containerfile: str, tag: str) -> None:
    (context / "Containerfile").write_text(containerfile)
    podman("build", "-q", "--network=host", "-t", tag, str(context))


@pytest.fixture(scope="module")
def images(
    nestos_sp2_image: str,
    nestos_sp1_image: str,
    rpm_repo_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    context = tmp_path_factory.mktemp("verify-images")
    (context / "nctest.repo").write_text(
        f"[nctest]\nbaseurl={rpm_repo_url}\nenabled=1\ngpgcheck=0\n"
    )
    tags = {
        k: f"localhost/nctest/verify-{k}-{uuid.uuid4().hex[:8]}:latest" for k in ("good", "sp1var")
    }
    build(
        context,
        (
            f"FROM {nestos_sp2_image}\n"
            "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
            "RUN rpm-ostree install strace nc-hello && rm -rf /var/cache && ostree container commit\n"
            "RUN rpm-ostree override remove toolbox && ostree container commit\n"
            "RUN printf 'Example Corp\\n' > /etc/motd && chmod 0640 /etc/motd"
            " && mkdir -p /etc/systemd/system/multi-user.target.wants"
            " && ln -s /usr/lib/systemd/system/agent.service /etc/systemd/system/multi-user.target.wants/agent.service"
            " && ostree container commit\n"
        ),
        tags["good"],
    )
    build(
        context,
        (
            f"FROM {nestos_sp1_image}\n"
            "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
            "RUN rpm-ostree install nc-varwriter && ostree container commit\n"
        ),
        tags["sp1var"],
    )
    yield tags
    for tag in tags.values():
        podman("rmi", "-f", tag, check=False)


def check(tmp_path: Path, image: str, body: str) -> VerifyReport:
    path = tmp_path / "recipes" / "r.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f'name: r\nbase: {{image: "{image}"}}\n{body}')
    return verify_image(load_recipe(path, project=tmp_path).recipe, image)


def failures(report: VerifyReport) -> dict[str, str]:
    return {
        f"{r.kind} {r.subject} {r.expectation}": r.detail for r in report.results if not r.passed
    }


def test_everything_passes(tmp_path: Path, images: dict[str, str]) -> None:
    report = check(
        tmp_path,
        images["good"],
        (
            "layers:\n  - {name: tools, install: [strace, nc-hello]}\n  - {name: slim, remove: [toolbox]}\n"
            "tests:\n"
            "  packages: {present: ['strace >= 6.0', nc-libgreet], absent: [toolbox]}\n"
            "  files: [{path: /etc/motd, mode: '0640', contains: Example Corp}, {path: /etc/nope, exists: false}]\n"
            "  commands: [{run: [nc-hello], stdout: 'hello from nc-hello 1\\.0'}]\n"
            "  units: {enabled: [agent.service], disabled: [zincati.service]}\n"
        ),
    )
    assert failures(report) == {}
    builtin = [r.subject for r in report.results if r.builtin]
    assert builtin == ["strace", "nc-hello", "toolbox", "/var"]


def test_each_kind_of_failure_says_what_was_found(tmp_path: Path, images: dict[str, str]) -> None:
    report = check(
        tmp_path,
        images["good"],
        (
            "layers:\n  - {name: tools, install: [strace, jq]}\n"
            "tests:\n"
            "  packages: {present: ['strace < 6.0'], absent: [nc-hello]}\n"
            "  files: [{path: /etc/motd, mode: '0644', contains: Other Corp}, {path: /etc/missing}]\n"
            "  commands: [{run: [nc-hello], exit: 3, stdout: goodbye}]\n"
            "  units: {enabled: [zincati.service], disabled: [agent.service]}\n"
        ),
    )
    found = failures(report)
    assert found["package jq installed"] == "not installed"
    assert found["package strace < 6.0 installed"].startswith("installed version is 0:6.")
    assert found["package nc-hello absent"].startswith("installed (0:1.0-1")
    assert found["file /etc/motd mode 0644"] == "mode is 0640"
    assert found["file /etc/motd contains 'Other Corp'"] == "text not found"
    assert found["file /etc/missing exists"] == "missing"
    assert (
        found["command nc-hello exit 3, stdout ~ 'goodbye'"]
        == "exit 0; stdout was 'hello from nc-hello 1.0'"
    )
    assert found["unit zincati.service enabled"] == "not enabled"
    assert found["unit agent.service disabled"] == "enabled"
    assert not report.passed


def test_var_content_is_caught_in_an_sp1_image(tmp_path: Path, images: dict[str, str]) -> None:
    report = check(
        tmp_path, images["sp1var"], ("layers:\n  - {name: state, install: [nc-varwriter]}\n")
    )
    assert failures(report) == {
        "var /var no files (a NestOS host drops them)": "/var/lib/nc-varwriter/state"
    }


def test_container_is_removed_even_when_checks_fail(tmp_path: Path, images: dict[str, str]) -> None:
    check(tmp_path, images["good"], "layers:\n  - {name: tools, install: [no-such-package]}\n")
    running = podman("ps", "-a", "--filter", f"ancestor={images['good']}", "--format", "{{.Names}}")
    assert running.strip() == ""


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NestcustomError, match="no image localhost/nctest/never-built:latest"):
        check(
            tmp_path, "localhost/nctest/never-built:latest", "layers: [{name: a, install: [x]}]\n"
        )


def test_cli_prints_a_table_and_writes_junit(tmp_path: Path, images: dict[str, str]) -> None:
    recipe = tmp_path / "recipes" / "r.yaml"
    recipe.parent.mkdir()
    recipe.write_text(
        f'name: r\nbase: {{image: "{images["good"]}"}}\nlayers:\n  - {{name: tools, install: [strace, jq]}}\n'
    )
    junit = tmp_path / "report.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "test",
            "recipes/r.yaml",
            "--image",
            images["good"],
            "--junit",
            str(junit),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 1
    assert "FAIL  package  jq installed (built-in): not installed" in result.stdout
    assert "PASS  package  strace installed (built-in)" in result.stdout
    assert result.stdout.rstrip().endswith("2 passed, 1 failed")
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    assert [c.get("name") for c in suite if c.find("failure") is not None] == ["jq installed"]
    assert (
        junit_xml(verify_image(load_recipe(recipe, project=tmp_path).recipe, images["good"]), "r")
        == junit.read_text()
    )
