"""Pushing: credentials where podman and skopeo find them, and a TLS mismatch said at once."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.universe import nestcustom, podman, project, write_recipe
from tests.universe.registry import Registry, run_registry

pytestmark = pytest.mark.universe
__all__ = ["project"]

LOGIN = ("pusher", "s3cret-pw")


@pytest.fixture
def locked_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("locked-registry"), login=LOGIN) as running:
        yield running


def test_push_honours_registry_auth_file(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, locked_registry: Registry
) -> None:
    write_recipe(
        project, "authed", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    reference = f"{locked_registry.host}/custom/authed:v1"
    auth = project / "auth.json"
    token = base64.b64encode(":".join(LOGIN).encode()).decode()
    auth.write_text(json.dumps({"auths": {locked_registry.host: {"auth": token}}}))
    args = ("build", "recipes/authed.yaml", "--tag", reference, "--push", "--no-tls-verify")
    try:
        anonymous = nestcustom(
            *args, cwd=project, env={**os.environ, "REGISTRY_AUTH_FILE": str(project / "none.json")}
        )
        assert anonymous.returncode == 1
        assert "hint: log in first" in anonymous.stderr
        result = nestcustom(*args, cwd=project, env={**os.environ, "REGISTRY_AUTH_FILE": str(auth)})
        assert result.returncode == 0, result.stderr
        pinned = result.stdout.strip()
        inspect = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--tls-verify=false",
                "--creds",
                ":".join(LOGIN),
                f"docker://{reference}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert (
            pinned == f"{locked_registry.host}/custom/authed@{json.loads(inspect.stdout)['Digest']}"
        )
    finally:
        podman("rmi", "-f", reference)


def test_tls_against_a_plain_http_registry_fails_at_once_with_the_hint(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, registry: Registry
) -> None:
    write_recipe(
        project, "plain", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    reference = f"{registry.host}/custom/plain:v1"
    try:
        result = nestcustom(
            "build", "recipes/plain.yaml", "--tag", reference, "--push", cwd=project
        )
        assert result.returncode == 1
        assert "HTTP response to HTTPS client" in result.stderr
        assert (
            "hint: the registry speaks plain http: for a local test registry pass --no-tls-verify"
            in result.stderr
        )
        assert "retrying" not in result.stderr and "attempts" not in result.stderr
        assert result.stdout == ""
    finally:
        podman("rmi", "-f", reference)


def served_digest(reference: str) -> str:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["Digest"])


def test_a_tag_the_registry_serves_for_another_image_is_pushed_again(
    project: Path, rpm_repo_url: str, nestos_sp2_image: str, registry: Registry
) -> None:
    """The local tag names an image of these inputs, but the registry's tag was moved to an
    unrelated image: build pushes ours again, prints only JSON, and the digest it gives is
    the one the registry serves for this push."""
    write_recipe(
        project, "moved", nestos_sp2_image, rpm_repo_url, "  - {name: a, install: [nc-hello]}\n"
    )
    reference = f"{registry.host}/custom/moved:v1"
    args = ("build", "recipes/moved.yaml", "--tag", reference, "--push", "--no-tls-verify")
    try:
        first = nestcustom(*args, cwd=project)
        assert first.returncode == 0, first.stderr
        ours = served_digest(reference)
        # Someone pushes an unrelated image under the same tag; the local tag stays ours.
        pushed = podman("push", "--tls-verify=false", nestos_sp2_image, f"docker://{reference}")
        assert pushed.returncode == 0, pushed.stderr
        assert served_digest(reference) != ours
        again = nestcustom(*args, "--json", cwd=project)
        assert again.returncode == 0, again.stderr
        document = json.loads(again.stdout)  # only JSON on stdout, no pinned line after it
        [image] = document["images"]
        assert image["up_to_date"] is None  # the registry did not hold it: it was pushed
        assert image["digest"] == served_digest(reference) == ours
        assert image["pinned"] == f"{registry.host}/custom/moved@{ours}"
        assert "built before from the same inputs; pushed only" in again.stderr
    finally:
        podman("rmi", "-f", reference)
