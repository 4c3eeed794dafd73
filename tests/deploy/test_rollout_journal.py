"""What a rollout leaves in its journal and what a resume and a rollback say: the preflight's
note of what each host booted, a skipped host's row, a resume against another image refused
(a real registry serving two bootable images, pushed by skopeo), and a host with nothing to
roll back to (in-process fake hosts, fakehost.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nestcustom.deploy.hostrun import HostRun, Owner, RolloutOptions
from nestcustom.deploy.hoststatus import identity, parse_status
from nestcustom.deploy.journal import Journal
from nestcustom.deploy.plan import RolloutRequest, plan_rollout, recorded_options
from nestcustom.deploy.rollback import rollback_host
from nestcustom.deploy.signals import StopFlags
from nestcustom.errors import BadInputError
from tests.deploy.fakehost import FakeHost
from tests.deploy.test_rollout_steps import deploy
from tests.fleet.trustimages import push
from tests.universe.registry import run_registry


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def test_the_journal_notes_what_each_host_booted_and_which_were_skipped(tmp_path: Path) -> None:
    first, second = FakeHost("h1"), FakeHost("h2")
    booted = identity(parse_status(first.status_json()).booted)
    first.rebase_fails = "Pulling manifest: manifest unknown"
    reports = deploy(tmp_path, [first, second], RolloutOptions(max_failures=1))
    assert reports["h2"].outcome == "skipped"
    written = rows(tmp_path / "j.jsonl")
    noted = [
        r for r in written if (r["host"], r["step"], r["state"]) == ("h1", "preflight", "noted")
    ]
    assert [r["data"]["before"] for r in noted] == [booted]
    skipped = [r for r in written if r["host"] == "h2"]
    assert [(r["step"], r["state"]) for r in skipped] == [("skipped", "ok")]


def test_a_host_without_a_rollback_deployment_says_nothing_to_go_back_to(tmp_path: Path) -> None:
    host = FakeHost("h1")  # one deployment: the booted one
    journal = Journal.create(tmp_path / "j.jsonl", "rollback", {"id": "0" * 32})
    owner = Owner("0" * 32, str(tmp_path / "j.jsonl"), "here:1")
    run = HostRun(host.host, host, None, RolloutOptions(), journal, lambda *_: None,
                  StopFlags(), owner)  # fmt: skip
    report = rollback_host(run)
    assert (report.outcome, report.error, report.hint) == (
        "failed",
        "no rollback deployment on this host",
        "nothing to go back to",
    )


@pytest.fixture(scope="module")
def bootable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """REG/x and the digests of two bootable images of it."""
    if not all(shutil.which(t) for t in ("skopeo", "docker-registry")):
        pytest.skip("skopeo and docker-registry (scripts/setup-host)")
    work = tmp_path_factory.mktemp("bootable")
    with run_registry(work / "registry") as registry:
        digests = [
            push(
                registry.host,
                work / f"oci-{n}",
                f"x:v{n}",
                [{"usr/share/v": str(n).encode()}],
                "",
                {"ostree.bootable": "true"},
            )
            for n in (1, 2)
        ]
        yield f"{registry.host}/x", digests[0], digests[1]


def test_a_resume_with_another_image_than_the_journals_is_refused(
    tmp_path: Path, bootable: tuple[str, str, str]
) -> None:
    repository, one, two = bootable
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  - {name: a, address: 127.0.0.1}\n")
    journal = tmp_path / "j.jsonl"
    header = {"id": "5" * 32, "target": f"{repository}@{one}", "hosts": ["a"],
              "options": recorded_options(RolloutOptions()), "controller": "here:1"}  # fmt: skip
    Journal.create(journal, "rollout", header).close()

    def resume(digest: str) -> RolloutRequest:
        return RolloutRequest(inventory, f"{repository}@{digest}", tls_verify=False, resume=journal)

    assert plan_rollout(resume(one)).target.pinned == f"{repository}@{one}"
    with pytest.raises(BadInputError) as caught:
        plan_rollout(resume(two))
    assert caught.value.message == (
        f"{journal}:1:1: this journal is a rollout of {repository}@{one}, not {repository}@{two}"
    )
    assert caught.value.hint == "resume with the reference the journal was started with"
