"""`nestcustom promote` against a real registry: ring tags moved by digest, journalled,
undone, re-runs that change nothing, and refusals that leave the ring where it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.universe.registry import Registry

pytestmark = pytest.mark.universe


def nestcustom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def push_image(registry: Registry, tmp: Path, content: str) -> str:
    """A tiny image holding `content`, pushed under a tag; its digest."""
    context = tmp / f"ctx-{content}"
    context.mkdir()
    (context / "f").write_text(content)
    (context / "Containerfile").write_text("FROM scratch\nCOPY f /f\n")
    local = f"localhost/nc-promote-test:{content}"
    subprocess.run(
        ["podman", "build", "-q", "-t", local, str(context)], check=True, capture_output=True
    )
    try:
        remote = f"{registry.host}/custom/agent:{content}"
        subprocess.run(
            ["podman", "push", "-q", "--tls-verify=false", local, f"docker://{remote}"],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run(["podman", "rmi", "-f", local], capture_output=True)
    return serving(remote)


def serving(reference: str) -> str:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
    )
    return str(json.loads(done.stdout)["Digest"]) if done.returncode == 0 else ""


def test_a_ring_moves_by_digest_and_back(registry: Registry, tmp_path: Path) -> None:
    image = f"{registry.host}/custom/agent"
    first, second = push_image(registry, tmp_path, "one"), push_image(registry, tmp_path, "two")
    journal = tmp_path / "promotions.jsonl"
    promote = ("promote", "--no-tls-verify", "--ring", "canary")

    done = nestcustom(*promote, f"{image}@{first}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{image}:ring-canary: (new) -> {first}\n"
    assert serving(f"{image}:ring-canary") == first

    again = nestcustom(*promote, f"{image}@{first}", cwd=tmp_path)
    assert (again.returncode, again.stdout) == (
        0,
        f"{image}:ring-canary already serves {first}: nothing to do\n",
    )
    assert len(journal.read_text().splitlines()) == 1  # a re-run writes nothing

    done = nestcustom(*promote, f"{image}@{second}", "--json", cwd=tmp_path)
    document = json.loads(done.stdout)
    assert (done.returncode, document["before"], document["after"], document["changed"]) == (
        0,
        first,
        second,
        True,
    )
    assert serving(f"{image}:ring-canary") == second
    assert serving(f"{image}:one") == first  # the source tag is untouched

    back = nestcustom(*promote, image, "--undo", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert back.stdout == f"{image}:ring-canary: {second} -> {first}\n"
    assert serving(f"{image}:ring-canary") == first

    nothing = nestcustom(*promote, image, "--undo", cwd=tmp_path)
    assert nothing.returncode == 2
    assert "nothing to go back to" in nothing.stderr
    assert serving(f"{image}:ring-canary") == first
    rows = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(r["before"], r["after"], r["undo"]) for r in rows] == [
        (None, first, False),
        (first, second, False),
        (second, first, True),
    ]


def test_refusals_leave_the_ring_where_it_was(registry: Registry, tmp_path: Path) -> None:
    image = f"{registry.host}/custom/agent"
    first = push_image(registry, tmp_path, "three")
    promote = ("promote", "--no-tls-verify", "--ring", "stable")
    assert nestcustom(*promote, f"{image}@{first}", cwd=tmp_path).returncode == 0
    journal = (tmp_path / "promotions.jsonl").read_text()

    absent = "sha256:" + "0" * 64
    done = nestcustom(*promote, f"{image}@{absent}", "--json", cwd=tmp_path)
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["message"] == f"{image}@{absent} is not in the registry"
    assert serving(f"{image}:ring-stable") == first

    tag = nestcustom(*promote, f"{image}:three", cwd=tmp_path)
    assert tag.returncode == 2
    assert "is not IMAGE@sha256:DIGEST" in tag.stderr

    pinned_undo = nestcustom(*promote, f"{image}@{first}", "--undo", cwd=tmp_path)
    assert pinned_undo.returncode == 2
    assert "--undo takes IMAGE without a digest" in pinned_undo.stderr

    # moved by hand since: undo is not ours to do
    other = push_image(registry, tmp_path, "four")
    subprocess.run(
        ["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false",
         "--dest-tls-verify=false", f"docker://{image}@{other}", f"docker://{image}:ring-stable"],
        check=True, capture_output=True,
    )  # fmt: skip
    moved = nestcustom(*promote, image, "--undo", cwd=tmp_path)
    assert moved.returncode == 2
    assert "it was moved by something else" in moved.stderr
    assert serving(f"{image}:ring-stable") == other
    assert (tmp_path / "promotions.jsonl").read_text() == journal  # nothing journalled

    (tmp_path / "promotions.jsonl").write_text(journal + "{oops\n")
    damaged = nestcustom(*promote, f"{image}@{other}", cwd=tmp_path)
    assert damaged.returncode == 2
    assert "promotions.jsonl:2:2: not JSON" in damaged.stderr
    assert "Traceback" not in damaged.stderr


def test_an_unreachable_registry_is_a_failure_not_a_traceback(tmp_path: Path) -> None:
    done = nestcustom(
        "promote", "--no-tls-verify", "--ring", "canary", "127.0.0.1:1/custom/agent@sha256:" + "a" * 64,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot ask the registry about 127.0.0.1:1/custom/agent:ring-canary" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "promotions.jsonl").exists()
