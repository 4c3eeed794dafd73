"""The rollout's decisions and the host's own words, on plain values (no host needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nestcustom.deploy import hostlock
from nestcustom.deploy.decide import (
    DriverChoice,
    Refusal,
    may_start,
    preflight_refusal,
    rebase_argv,
    recheck,
    rollback_action,
    skip_reason,
    staged_problem,
    verify_problem,
)
from nestcustom.deploy.hoststatus import (
    Deployment,
    HostFacts,
    identity,
    needs_experimental,
    parse_facts,
    parse_status,
)
from nestcustom.deploy.report import HostReport, StepRecord, report_from_dict
from nestcustom.errors import NestcustomError
from nestcustom.sanitize import clean

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
ORIGIN = "openEuler:openEuler/x86_64/nestos/stable"


def deployment(
    checksum: str, *, booted: bool = False, staged: bool = False, digest: str | None = None
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": f"nestos-{checksum}.0",
        "osname": "nestos",
        "checksum": checksum,
        "serial": 0,
        "booted": booted,
        "staged": staged,
        "pinned": False,
        "unlocked": "none",
        "timestamp": 1,
    }
    if digest:
        d["container-image-reference"] = f"ostree-unverified-registry:r/x@{digest}"
        d["container-image-reference-digest"] = digest
    else:
        d["origin"] = ORIGIN
        d["version"] = "22.03-LTS-SP2.20230922.0"
    return d


def status_json(*deployments: dict[str, Any], transaction: Any = None, driver: bool = False) -> str:
    return json.dumps(
        {
            "deployments": list(deployments),
            "transaction": transaction,
            "cached-update": None,
            "update-driver": {"driver-name": "Zincati", "driver-sd-unit": "zincati.service"}
            if driver
            else None,
        }
    )


def facts(status: str, *, arch: str = "x86_64", version: str = "2022.16", lock: str = "") -> str:
    return (
        f"==status\n{status}\n==arch\n{arch}\n==machine-id\nm1\n==boot-id\nb1\n"
        f"==rpm-ostree\nrpm-ostree:\n Version: '{version}'\n Git: 0\n==lock\n{lock}\n==end\n"
    )


BASE = deployment("aaa", booted=True)


def test_status_model_reads_the_contract_shape() -> None:
    status = parse_status(
        status_json(
            deployment("bbb", staged=True, digest=D1),
            BASE,
            transaction=["rebase", "client(id:cli)", "/org/projectatomic/rpmostree1/nestos"],
            driver=True,
        )
    )
    assert status.booted is not None and status.booted.origin == ORIGIN
    assert status.staged is not None and status.staged.image_digest == D1
    assert status.staged.version is None  # no version key: an image without the label
    assert status.rollback is None
    assert status.update_driver == "Zincati (zincati.service)"
    assert status.transaction == "rebase by client(id:cli)"
    with pytest.raises(NestcustomError, match="cannot read rpm-ostree status --json"):
        parse_status('{"deployments": [{"id": 1}]}')


def test_facts_in_one_call_and_the_sp1_rebase() -> None:
    sp1 = parse_facts(facts(status_json(BASE), version="2022.8"))
    assert (sp1.arch, sp1.machine_id, sp1.boot_id, sp1.rpm_ostree, sp1.lock) == (
        "x86_64",
        "m1",
        "b1",
        (2022, 8),
        "",
    )
    assert rebase_argv(sp1, "REF", DriverChoice()) == [
        "rpm-ostree",
        "rebase",
        "--experimental",
        "REF",
    ]
    sp2 = parse_facts(facts(status_json(BASE, driver=True)))
    assert rebase_argv(sp2, "REF", DriverChoice(disable_zincati=True)) == [
        "rpm-ostree",
        "rebase",
        "--bypass-driver",
        "REF",
    ]
    assert rebase_argv(sp2, "REF", DriverChoice()) == ["rpm-ostree", "rebase", "REF"]
    assert [
        needs_experimental(v) for v in ((2022, 8), (2022, 15), (2022, 16), (2023, 1), None)
    ] == [True, True, False, False, True]
    with pytest.raises(NestcustomError, match="cut short"):
        parse_facts(facts(status_json(BASE)).replace("==end\n", ""))
    with pytest.raises(NestcustomError, match="rpm-ostree status failed: error: daemon down"):
        parse_facts("==status\nerror: daemon down\n==status-failed\n==end\n")


def one(status: str, **kw: Any) -> HostFacts:
    return parse_facts(facts(status, **kw))


@pytest.mark.parametrize(
    ("host", "arch", "choice", "message"),
    [
        (
            one(status_json(BASE, transaction=["rebase", "c", "/p"])),
            None,
            DriverChoice(),
            "an rpm-ostree transaction is running (rebase by c)",
        ),
        (
            one(status_json(BASE), arch="aarch64"),
            "x86_64",
            DriverChoice(),
            "the host is aarch64, the image is for x86_64",
        ),
        (
            one(status_json(BASE, driver=True)),
            None,
            DriverChoice(),
            "updates on this host are driven by Zincati (zincati.service)",
        ),
        (
            one(status_json(deployment("aaa"))),
            None,
            DriverChoice(),
            "rpm-ostree reports no booted deployment",
        ),
        (one(status_json(BASE, driver=True)), "x86_64", DriverChoice(bypass_driver=True), None),
        (one(status_json(BASE, driver=True)), "x86_64", DriverChoice(disable_zincati=True), None),
        (one(status_json(BASE)), None, DriverChoice(), None),
    ],
)
def test_preflight_refusals(
    host: HostFacts, arch: str | None, choice: DriverChoice, message: str | None
) -> None:
    refusal = preflight_refusal(host, arch, choice)
    assert (refusal.message if refusal else None) == message


def test_after_rebase_and_after_reboot() -> None:
    staged = parse_status(status_json(deployment("bbb", staged=True, digest=D1), BASE))
    assert staged_problem(staged, D1) is None
    assert staged_problem(staged, D2) == f"after the rebase the staged deployment is {D1}, not {D2}"
    back_old = parse_status(status_json(BASE, deployment("bbb", digest=D1)))
    assert verify_problem(back_old, D1) == f"came back on {ORIGIN}, not {D1}"
    on_new = parse_status(status_json(deployment("bbb", booted=True, digest=D1), BASE))
    assert verify_problem(on_new, D1) is None


def test_rollback_action() -> None:
    never_rebooted = parse_status(status_json(deployment("bbb", staged=True, digest=D1), BASE))
    assert rollback_action(never_rebooted, "aaa") == "drop-staged"
    assert rollback_action(parse_status(status_json(BASE)), "aaa") == "none"
    on_new = parse_status(status_json(deployment("bbb", booted=True, digest=D1), BASE))
    assert rollback_action(on_new, "aaa") == "rollback"


def test_failure_budget_and_skip_reasons() -> None:
    assert [may_start(f, 2, False) for f in (0, 1, 2, 3)] == [True, True, False, False]
    assert may_start(0, 2, True) is False
    assert skip_reason(True, 0) == "not started: stopped by the operator"
    assert skip_reason(False, 2) == "not started: 2 host(s) failed (--max-failures)"


def test_a_done_host_is_rechecked_by_its_booted_digest() -> None:
    done = HostReport("a", "updated", ORIGIN, D1)
    on_target = parse_status(status_json(deployment("bbb", booted=True, digest=D1), BASE))
    assert recheck(done, on_target, D1) is None
    rolled_back_since = parse_status(status_json(BASE, deployment("bbb", digest=D1)))
    drifted = recheck(done, rolled_back_since, D1)
    assert drifted is not None and drifted.outcome == "drifted" and not drifted.ok
    assert drifted.error == f"the journal says updated, but the host now boots {ORIGIN}"
    staged = HostReport("a", "staged", ORIGIN, ORIGIN)
    still_staged = parse_status(status_json(deployment("bbb", staged=True, digest=D1), BASE))
    assert recheck(staged, still_staged, D1) is None
    assert recheck(staged, parse_status(status_json(BASE)), D1) is not None


def test_report_round_trip() -> None:
    report = HostReport(
        "a", "failed", "x", None, error="e", rolled_back=True, rollback_verified=False
    )
    assert report_from_dict(json.loads(json.dumps(report.as_dict()))) == report
    assert report.rollback_line() == "NOT verified"
    with pytest.raises(TypeError):
        report_from_dict({"host": "a"})


def test_host_output_is_sanitized() -> None:
    assert clean("a\x1b[31mred\x1b[0m b\x1b]0;title\x07c\x9bd\x07e\r\nf\tg") == "ared bcde\nf\tg"
    status = parse_status(status_json({**BASE, "version": "v\x1b[2J\x1b]8;;http://x\x1b\\1"}))
    assert status.booted is not None and status.booted.version == "v1"


def test_lock_owner_and_busy_wording() -> None:
    owner = hostlock.LockOwner("f" * 32, "ctl:123", "/j.jsonl", 1000.0)
    line = owner.line()
    assert line.startswith('{"rollout": "' + "f" * 32 + '"')  # the shell scripts match this prefix
    assert hostlock.parse_owner(line) == hostlock.LockOwner("f" * 32, "ctl:123", "/j.jsonl", 1000.0)
    assert hostlock.parse_owner("garbage") is None
    message, hint = hostlock.describe_busy(owner, line, 1000.0 + 7380, gone=True)
    assert message == (
        f"busy: rollout {'f' * 32} (controller ctl:123, journal /j.jsonl) holds this "
        "host since 2 h 3 min ago; its controller process is gone"
    )
    assert hint.endswith(f"take its hosts over with --take-over {'f' * 32}")
    assert "may still be running" in hostlock.describe_busy(owner, line, 1000.0, gone=False)[0]
    assert hostlock.controller_gone(owner, "ctl:999", alive=False)
    assert not hostlock.controller_gone(owner, "ctl:999", alive=True)
    assert not hostlock.controller_gone(owner, "other:999", alive=False)
    assert hostlock.valid_rollout_id("f" * 32) and not hostlock.valid_rollout_id("F" * 32)


def test_whole_refusals_with_their_hints() -> None:
    transaction = preflight_refusal(one(status_json(BASE, transaction=True)), None, DriverChoice())
    assert transaction == Refusal(
        "an rpm-ostree transaction is running (a transaction)", "wait for it to finish, then re-run"
    )
    assert preflight_refusal(one(status_json(deployment("aaa"))), None, DriverChoice()) == Refusal(
        "rpm-ostree reports no booted deployment", "is this an rpm-ostree host?"
    )
    assert preflight_refusal(
        one(status_json(BASE), arch="aarch64"), "x86_64", DriverChoice()
    ) == Refusal(
        "the host is aarch64, the image is for x86_64",
        "build on a base of the host's stream and architecture",
    )
    assert preflight_refusal(one(status_json(BASE, driver=True)), None, DriverChoice()) == Refusal(
        "updates on this host are driven by Zincati (zincati.service)",
        "pass --disable-zincati (turns Zincati's updates off, then rebases) or --bypass-driver",
    )


def test_the_drifted_report_in_full() -> None:
    steps = (StepRecord("verify", True, 1.0, "booted"),)
    done = HostReport("a", "updated", ORIGIN, D1, steps)
    rolled_back_since = parse_status(status_json(BASE, deployment("bbb", digest=D1)))
    assert recheck(done, rolled_back_since, D1) == HostReport(
        "a",
        "drifted",
        D1,
        ORIGIN,
        steps,
        error=f"the journal says updated, but the host now boots {ORIGIN}",
        hint="someone changed it after this rollout; start a new rollout to move it again",
    )


def test_every_field_of_a_deployment_and_odd_status_shapes() -> None:
    (staged, booted) = parse_status(
        status_json({**deployment("bbb", staged=True, digest=D1), "pinned": True}, BASE)
    ).deployments
    assert staged == Deployment(
        "nestos-bbb.0",
        "bbb",
        False,
        True,
        None,
        f"ostree-unverified-registry:r/x@{D1}",
        D1,
        None,
        True,
    )
    assert staged.source == f"ostree-unverified-registry:r/x@{D1} ({D1})"
    assert booted == Deployment(
        "nestos-aaa.0", "aaa", True, False, "22.03-LTS-SP2.20230922.0", None, None, ORIGIN, False
    )
    assert booted.source == ORIGIN and identity(None) is None
    odd = json.loads(status_json(BASE))
    odd["update-driver"] = {"driver-name": "Zincati"}
    assert parse_status(json.dumps(odd)).update_driver == "Zincati (?)"
    odd["update-driver"] = {"driver-sd-unit": "z.service"}
    assert parse_status(json.dumps(odd)).update_driver == "? (z.service)"
    odd["update-driver"] = {}
    assert parse_status(json.dumps(odd)).update_driver is None
    with pytest.raises(NestcustomError) as caught:
        parse_status('{"deployments": [{"checksum": "x"}]}')
    assert caught.value.message == "cannot read rpm-ostree status --json: 'id'"


def test_every_fact_and_the_lock_section() -> None:
    lock = '{"rollout": "' + "a" * 32 + '", "controller": "c:1", "journal": "/j", "since": 1}'
    text = facts(status_json(BASE), lock=lock).replace("==machine-id\nm1\n", "==machine-id\n")
    got = parse_facts(text)
    assert (got.machine_id, got.lock, got.boot_id) == ("", lock, "b1")
    assert got.status == parse_status(status_json(BASE))
    no_version = parse_facts(facts(status_json(BASE)).replace(" Version: '2022.16'\n", ""))
    assert no_version.rpm_ostree is None
    with pytest.raises(NestcustomError) as caught:
        parse_facts(facts(status_json(BASE)).replace("==end\n", ""))
    assert (caught.value.message, caught.value.hint) == (
        "the preflight facts were cut short",
        "re-run; is the host rebooting?",
    )
    failing = "==status\nline1\nline2\nline3\nline4\n==status-failed\n==end\n"
    with pytest.raises(NestcustomError) as caught:
        parse_facts(failing)
    assert caught.value.message == "rpm-ostree status failed: line2\nline3\nline4"
