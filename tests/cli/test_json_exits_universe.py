"""The exit paths of tests/cli/test_json_exits.py that need built images: a build of several
recipes where one fails, a test run with a failing check, and JUnit on every path that ran
checks (and an error report where the image is missing). Exit codes as the README says."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.image.universe import nestcustom, podman, project, tag, write_recipe

pytestmark = pytest.mark.universe
__all__ = ["project", "tag"]


def test_one_failed_build_among_several_exits_1_with_every_image_in_the_document(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project, "good", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    write_recipe(
        project,
        "broken",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: a, install: [no-such-package]}\n",
    )
    template = tag.replace(":latest", "-{name}:latest")
    try:
        done = nestcustom(
            "build", "recipes/good.yaml", "recipes/broken.yaml", "--tag", template, "--json",
            cwd=project,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        assert document["ok"] is False and document["exit_code"] == 1
        assert document["error"] == {
            "kind": "failure",
            "message": "1 of 2 build(s) failed: broken",
            "hint": None,
        }
        good, broken = document["images"]
        assert good["ok"] is True and good["reference"] == template.replace("{name}", "good")
        assert broken["ok"] is False
        assert "Packages not found: no-such-package" in broken["error"]["message"]
    finally:
        for name in ("good", "broken"):
            podman("rmi", "-f", template.replace("{name}", name))


def test_a_failing_check_exits_1_in_json_and_junit(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, tag: str
) -> None:
    write_recipe(
        project,
        "checked",
        nestos_sp2_image,
        rpm_repo_url,
        "  - {name: a, install: [nc-hello]}\n",
        "tests:\n  commands:\n    - {run: [sh, -c, 'exit 3']}\n",
    )
    built = nestcustom("build", "recipes/checked.yaml", "--tag", tag, cwd=project)
    assert built.returncode == 0, built.stderr
    junit = project / "report.xml"
    done = nestcustom(
        "test", "recipes/checked.yaml", "--image", tag, "--json", "--junit", str(junit),
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["failed"] == 1
    assert document["error"]["message"] == "1 check(s) failed"
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "1" and suite.get("errors") == "0"


def test_a_missing_image_gets_an_error_report(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str
) -> None:
    write_recipe(
        project, "gone", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    junit = project / "report.xml"
    done = nestcustom(
        "test", "recipes/gone.yaml", "--image", "localhost/nctest/never-built:1",
        "--json", "--junit", str(junit), cwd=project,
    )  # fmt: skip
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["message"].startswith(
        "no image localhost/nctest/never-built:1"
    )
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("errors") == "1" and suite.get("tests") == "1"
    [error] = suite.iter("error")
    assert "no image localhost/nctest/never-built:1" in (error.get("message") or "")
