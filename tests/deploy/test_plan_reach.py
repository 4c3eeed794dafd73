"""plan.py's journal side, fast: what a rollout writes in its header, what `deploy --resume`
reads back from it (options, health checks, the hosts an earlier run finished), the
located errors for a header it cannot read, and a whole rollout then its resume run
against in-process hosts (tests/deploy/fakehost.py). The universe tests do the same over
SSH on emulated hosts; these run in a second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nestcustom.deploy import plan as plan_mod
from nestcustom.deploy.fleetlock import FleetLock, LockError
from nestcustom.deploy.health import Check, HealthChecks, from_record, to_record
from nestcustom.deploy.hostrun import HostRun, Owner, RolloutOptions
from nestcustom.deploy.inventory import Host
from nestcustom.deploy.journal import Journal, read_rows
from nestcustom.deploy.plan import (
    RolloutPlan,
    RolloutRequest,
    _host_run,
    _open_journal,
    _recheck,
    options_from_record,
    recorded_options,
    run_rollout,
    with_trust,
)
from nestcustom.deploy.replay import replay
from nestcustom.deploy.report import HostReport
from nestcustom.deploy.signals import StopFlags
from nestcustom.deploy.ssh import Failure, SshError, SshOptions
from nestcustom.deploy.target import Target
from nestcustom.errors import BadInputError
from tests.deploy.fakehost import FakeHost, deployment

DIGEST = "sha256:" + "2" * 64
TARGET = Target(f"r/x@{DIGEST}", DIGEST, "x86_64")
ID = "5" * 32
CHECKS = HealthChecks(
    (
        Check("unit", "chronyd.service"),
        Check("file", "/etc/motd", ("yes", "644", "hello")),
        Check("command", "true --x", ("0", "^ok"), ("true", "--x"), 7.5),
    ),
    "site.yaml",
)
OPTIONS = RolloutOptions(
    batch=3,
    max_failures=2,
    reboot=False,
    bypass_driver=True,
    disable_zincati=False,
    reboot_timeout=42.5,
    fleetlock=FleetLock("http://127.0.0.1:9/", "workers"),
    health=CHECKS,
)


def through_json(record: dict[str, Any]) -> dict[str, Any]:
    """What a header holds once written and read back (the journal is JSON lines)."""
    result: dict[str, Any] = json.loads(json.dumps(record))
    return result


# -- the header's options ---------------------------------------------------------------


def test_the_recorded_options_are_the_clis_values_by_name() -> None:
    assert recorded_options(OPTIONS) == {
        "batch": 3,
        "max_failures": 2,
        "reboot": False,
        "bypass_driver": True,
        "disable_zincati": False,
        "reboot_timeout": 42.5,
        "fleetlock": "http://127.0.0.1:9/",
        "group": "workers",
        "health": to_record(CHECKS),
    }
    plain = recorded_options(RolloutOptions())
    assert (plain["fleetlock"], plain["group"]) == (None, None)
    assert plain["health"] == {"source": "", "checks": []}


@pytest.mark.parametrize(
    "options", [OPTIONS, RolloutOptions(), RolloutOptions(disable_zincati=True, max_failures=0)]
)
def test_a_resumed_rollout_gets_back_exactly_the_options_it_was_started_with(
    tmp_path: Path, options: RolloutOptions
) -> None:
    back = options_from_record(tmp_path / "j", through_json(recorded_options(options)))
    assert back == options
    assert back.health.checks == options.health.checks  # each check, with its arguments
    assert back.health.source == options.health.source


def test_a_group_without_a_fleetlock_server_takes_no_slot(tmp_path: Path) -> None:
    record = {**through_json(recorded_options(OPTIONS)), "fleetlock": None}
    assert options_from_record(tmp_path / "j", record).fleetlock is None


def test_a_header_without_health_checks_resumes_with_none(tmp_path: Path) -> None:
    record = through_json(recorded_options(RolloutOptions(batch=2)))
    del record["health"]
    assert options_from_record(tmp_path / "j", record) == RolloutOptions(batch=2)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"batch": "many"}, "invalid literal for int() with base 10: 'many'"),
        ({"max_failures": None}, "int() argument must be"),
        ({"reboot_timeout": "soon"}, "could not convert string to float: 'soon'"),
        ({"group": "bad group"}, "FleetLock group 'bad group' must match"),
        ({"fleetlock": "ftp://x/"}, "FleetLock URL 'ftp://x/' must be http or https"),
        ({"health": {"source": "r.yaml", "checks": [{"kind": "unit"}]}}, "'target'"),
        ({"health": {"checks": []}}, "'source'"),
        ({"fleetlock": 123}, "FleetLock URL '123' must be http or https"),  # was a traceback
        # Hand-edited text for a flag: bool("false") is True, which would reboot the hosts.
        ({"reboot": "false"}, "reboot: true or false, not 'false'"),
        ({"bypass_driver": 0}, "bypass_driver: true or false, not 0"),
        ({"disable_zincati": None}, "disable_zincati: true or false, not None"),
    ],
)
def test_an_unreadable_header_option_is_a_located_error(
    tmp_path: Path, change: dict[str, Any], said: str
) -> None:
    record = {**through_json(recorded_options(OPTIONS)), **change}
    path = tmp_path / "j.jsonl"
    with pytest.raises(BadInputError) as caught:
        options_from_record(path, record)
    message = caught.value.message
    assert message.startswith(f"{path}:1:1: the rollout header's options are not readable (")
    assert said in message


@pytest.mark.parametrize("key", sorted(plan_mod.RECORDED))
def test_a_header_missing_an_option_names_it(tmp_path: Path, key: str) -> None:
    record = through_json(recorded_options(OPTIONS))
    del record[key]
    if key == "health":
        assert options_from_record(tmp_path / "j", record).health == HealthChecks()
        return
    with pytest.raises(BadInputError, match=rf"options are not readable \('{key}'\)"):
        options_from_record(tmp_path / "j", record)


def test_health_checks_round_trip_through_the_journal() -> None:
    record = through_json(to_record(CHECKS))
    assert record == {
        "source": "site.yaml",
        "checks": [
            {"kind": "unit", "target": "chronyd.service", "args": [], "run": [], "timeout": 60.0},
            {
                "kind": "file",
                "target": "/etc/motd",
                "args": ["yes", "644", "hello"],
                "run": [],
                "timeout": 60.0,
            },
            {
                "kind": "command",
                "target": "true --x",
                "args": ["0", "^ok"],
                "run": ["true", "--x"],
                "timeout": 7.5,
            },
        ],
    }
    back = from_record(record)
    assert back == CHECKS
    assert back.argv() == CHECKS.argv()  # what the host is asked after the reboot
    assert from_record(to_record(HealthChecks())) == HealthChecks()


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"source": "s"}, KeyError),
        ({"checks": []}, KeyError),
        ({"source": "s", "checks": [{"kind": "unit", "target": "u", "args": [], "run": []}]}, KeyError),
        ({"source": "s", "checks": [{"kind": "unit", "target": "u", "args": [], "run": [],
                                     "timeout": "x"}]}, ValueError),
        ({"source": "s", "checks": None}, TypeError),
    ],
)  # fmt: skip
def test_health_from_a_record_that_is_not_one_raises_what_the_caller_catches(
    record: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        from_record(record)


# -- the signature checks ---------------------------------------------------------------

SIGNING = (("io.nestcustom.signing", "gpg:r/x"),)


def a_plan(tmp_path: Path, target: Target = TARGET, **more: Any) -> RolloutPlan:
    hosts = more.pop("hosts", (Host("a", "127.0.0.1", 9),))
    return RolloutPlan(ID, target, hosts, RolloutOptions(), tmp_path / "j.jsonl", **more)


def request(**more: Any) -> RolloutRequest:
    return RolloutRequest(Path("inv.yaml"), TARGET.pinned, **more)


def test_an_image_signed_for_its_repository_is_checked_on_every_host(tmp_path: Path) -> None:
    target = Target(TARGET.pinned, DIGEST, "x86_64", labels=SIGNING)
    plan = with_trust(a_plan(tmp_path, target, warnings=("earlier",)), request())
    assert plan.trust is not None and plan.trust.required and not plan.trust.unsigned
    assert "gpg:r/x" in plan.trust.reason
    assert plan.warnings == ("earlier",)  # nothing said when the check is on


def test_unsigned_on_an_image_that_asks_for_signatures_is_said_loudly(tmp_path: Path) -> None:
    target = Target(TARGET.pinned, DIGEST, "x86_64", labels=SIGNING)
    plan = with_trust(a_plan(tmp_path, target, warnings=("earlier",)), request(unsigned=True))
    assert plan.trust is not None and plan.trust.unsigned and plan.trust.required
    assert plan.warnings == (
        "earlier",
        "warning: --unsigned: signatures are NOT checked on any host, although "
        + plan.trust.reason,
    )


def test_signed_and_bootstrap_reach_the_hosts_trust_options(tmp_path: Path) -> None:
    plan = with_trust(a_plan(tmp_path), request(signed=True, bootstrap_trust=True))
    assert plan.trust is not None
    assert (plan.trust.required, plan.trust.reason, plan.trust.bootstrap) == (
        True,
        "--signed",
        True,
    )
    assert plan.warnings == ()
    plain = with_trust(a_plan(tmp_path), request(unsigned=True))
    assert plain.trust is not None and not plain.trust.required and plain.trust.unsigned
    assert plain.warnings == ()  # nothing asked for signatures: nothing to warn about


# -- the journal a rollout opens ----------------------------------------------------------

OWNER = Owner(ID, "/j", "here:1")


def test_a_new_rollouts_journal_starts_with_the_header_a_resume_reads(tmp_path: Path) -> None:
    hosts = (Host("a", "127.0.0.1", 9), Host("b", "127.0.0.1", 9))
    plan = RolloutPlan(ID, TARGET, hosts, OPTIONS, tmp_path / "j.jsonl")
    _open_journal(plan, OWNER).close()
    rows = read_rows(plan.journal_path)
    assert len(rows) == 1
    header = rows[0][1]["rollout"]
    assert header["controller"] == "here:1"
    done = replay(plan.journal_path, rows)
    assert (done.header.id, done.header.target, done.header.hosts) == (
        ID,
        TARGET.pinned,
        ("a", "b"),
    )
    assert options_from_record(plan.journal_path, done.header.options) == OPTIONS


def test_a_new_rollout_never_writes_into_an_existing_journal(tmp_path: Path) -> None:
    plan = a_plan(tmp_path)
    plan.journal_path.write_text("precious\n")
    with pytest.raises(BadInputError, match="already exists: a journal belongs to exactly one"):
        _open_journal(plan, OWNER)
    assert plan.journal_path.read_text() == "precious\n"


def test_a_resumed_rollout_appends_who_resumed_it(tmp_path: Path) -> None:
    first = a_plan(tmp_path)
    _open_journal(first, OWNER).close()
    done = replay(first.journal_path, read_rows(first.journal_path))
    again = a_plan(tmp_path, replay=done)
    journal = _open_journal(again, Owner(ID, "/j", "there:2"))
    journal.close()
    rows = read_rows(first.journal_path)
    assert len(rows) == 2
    assert rows[1][1]["resume"] == {"controller": "there:2"}
    assert rows[1][1]["rollout_id"] == ID


# -- hosts an earlier run finished, and whole rollouts -------------------------------------


def report(host: str, outcome: str) -> HostReport:
    return HostReport(host, outcome, "before", DIGEST)


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeHost]:
    """The plan's connections go to in-process hosts, by name."""
    hosts: dict[str, FakeHost] = {}
    FakeHost.changing, FakeHost.most_changing = set(), 0

    def connect(host: Host, _: SshOptions) -> FakeHost:
        return hosts.setdefault(host.name, FakeHost(host.name))

    monkeypatch.setattr(plan_mod, "Connection", connect)
    return hosts


SSH = SshOptions(Path("/nonexistent"))


def on_target(fake: FakeHost) -> None:
    fake.deployments = [deployment("2" * 64, DIGEST, True, False)]


@pytest.mark.parametrize("outcome", ["failed", "rolled-back", "drifted"])
def test_a_host_that_did_not_succeed_is_not_rechecked(
    fleet: dict[str, FakeHost], outcome: str
) -> None:
    earlier = report("a", outcome)
    assert _recheck(Host("a", "127.0.0.1", 9), earlier, TARGET, SSH) is earlier
    assert fleet == {}  # no host was contacted


@pytest.mark.parametrize("outcome", ["updated", "unchanged", "staged"])
def test_a_finished_host_still_on_the_target_keeps_its_report(
    fleet: dict[str, FakeHost], outcome: str
) -> None:
    on_target(fleet.setdefault("a", FakeHost("a")))
    earlier = report("a", outcome)
    assert _recheck(Host("a", "127.0.0.1", 9), earlier, TARGET, SSH) == earlier
    assert fleet["a"].commands == ["rpm-ostree status --json"]


def test_a_finished_host_moved_since_is_reported_drifted(fleet: dict[str, FakeHost]) -> None:
    fleet["a"] = FakeHost("a")  # boots its base again
    now = _recheck(Host("a", "127.0.0.1", 9), report("a", "updated"), TARGET, SSH)
    assert now.outcome == "drifted"
    assert now.error is not None and "the journal says updated, but the host now boots" in now.error


def test_a_finished_host_that_cannot_be_asked_is_unchecked_and_says_why(
    fleet: dict[str, FakeHost],
) -> None:
    fleet["a"] = FakeHost("a")
    fleet["a"].never_back = True
    now = _recheck(Host("a", "127.0.0.1", 9), report("a", "updated"), TARGET, SSH)
    assert now.outcome == "unchecked"
    assert now.error == (
        "the journal says updated; re-checking it failed: unreachable: connection refused"
    )
    assert now.before == "before" and now.after == DIGEST  # the rest is the journal's


def test_a_resumed_hosts_run_takes_up_where_the_journal_left_it(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal.create(path, "rollout", {"id": ID, "target": TARGET.pinned,
                                               "hosts": ["a", "b", "c", "d"], "options": {}})  # fmt: skip
    journal.record("a", "preflight", "ok", before="old-a")
    journal.record("a", "rebase", "ok")
    journal.record("a", "kargs", "ok", present=["quiet"], absent=["rhgb"], cmdline="ro rhgb")
    journal.record("a", "slot", "taken")
    journal.record("a", "reboot", "start")
    journal.record("b", "skipped", "ok", reason="the failure budget is spent")
    journal.record("d", "preflight", "start")
    journal.record("d", "busy", "ok", error="busy: rollout ...")
    journal.close()
    done = replay(path, read_rows(path))
    plan = a_plan(tmp_path, replay=done, trust=None)
    stops = StopFlags()
    runs = {
        name: _host_run(plan, Host(name, "127.0.0.1", 9), journal, lambda *_: None, stops,
                        OWNER, SSH)
        for name in "abcd"
    }  # fmt: skip
    a = runs["a"]
    assert (a.resumed, a.earlier_before, a.was_rebooting, a.slot_held) == (
        True, "old-a", True, True,
    )  # fmt: skip
    assert a.kargs is not None and (a.kargs.present, a.kargs.absent) == (("quiet",), ("rhgb",))
    assert a.kargs.options == ()  # applied before the stop: only checked now
    assert a.cmdline_before == "ro rhgb"
    assert a.lock_held  # the earlier run took the lock: this run releases it
    assert not runs["b"].lock_held  # a skipped host never took it
    assert not runs["d"].lock_held  # nor one another rollout held
    c = runs["c"]
    assert (c.resumed, c.was_rebooting, c.slot_held, c.lock_held, c.kargs) == (
        False, False, False, False, None,
    )  # fmt: skip
    assert all(r.target == TARGET and r.options == plan.options for r in runs.values())


def test_a_new_hosts_run_carries_the_plans_trust_and_nothing_resumed(tmp_path: Path) -> None:
    plan = with_trust(a_plan(tmp_path), request(signed=True))
    run = _host_run(plan, Host("a", "127.0.0.1", 9), None, lambda *_: None,  # type: ignore[arg-type]
                    StopFlags(), OWNER, SSH)  # fmt: skip
    assert isinstance(run, HostRun)
    assert run.trust == plan.trust and run.trust is not None and run.trust.required
    assert (run.resumed, run.lock_held, run.earlier_before) == (False, False, None)


def test_a_rollout_then_its_resume_report_every_host_in_the_journals_order(
    tmp_path: Path, fleet: dict[str, FakeHost]
) -> None:
    hosts = (Host("b", "127.0.0.1", 9), Host("a", "127.0.0.1", 9))
    options = RolloutOptions(max_failures=2, reboot_timeout=20)
    plan = RolloutPlan(ID, TARGET, hosts, options, tmp_path / "j.jsonl")
    heard: list[tuple[str, str, str]] = []
    result = run_rollout(plan, False, lambda *e: heard.append(e), lambda _: None)
    assert [(r.host, r.outcome) for r in result.reports] == [("b", "updated"), ("a", "updated")]
    assert result.journal_path == plan.journal_path and result.stopped_by is None
    assert ("a", "verify", "ok") in heard and ("b", "verify", "ok") in heard
    assert all(f.lock is None for f in fleet.values())  # both host locks released

    # The resume of that journal: both hosts are finished; one was moved back since.
    fleet["a"].deployments = [deployment("a" * 64, None, True, False)]
    done = replay(plan.journal_path, read_rows(plan.journal_path))
    earlier = tuple((h, t.final) for h in hosts if (t := done.trail(h.name)).final)
    resumed = RolloutPlan(ID, TARGET, (), options, plan.journal_path, earlier, done)
    again = run_rollout(resumed, False, lambda *_: None, lambda _: None)
    assert [(r.host, r.outcome) for r in again.reports] == [("b", "updated"), ("a", "drifted")]
    rows = [row for _, row in read_rows(plan.journal_path)]
    assert rows[-3]["resume"]["controller"]
    rechecks = [(r["host"], r["data"]["outcome"]) for r in rows if r.get("step") == "recheck"]
    assert rechecks == [("b", "updated"), ("a", "drifted")]


def test_a_rollout_whose_fleetlock_server_is_down_changes_no_host(
    tmp_path: Path, fleet: dict[str, FakeHost]
) -> None:
    lock = FleetLock("http://127.0.0.1:9/", "workers", timeout=1, backoff=0.1)
    plan = RolloutPlan(ID, TARGET, (Host("a", "127.0.0.1", 9),),
                       RolloutOptions(fleetlock=lock), tmp_path / "j.jsonl")  # fmt: skip
    with pytest.raises(LockError, match=r"http://127.0.0.1:9/ \(v1/steady-state, group workers\)"):
        run_rollout(plan, False, lambda *_: None, lambda _: None)
    assert fleet == {} and not plan.journal_path.exists()


def test_without_reboots_the_fleetlock_server_is_not_needed(
    tmp_path: Path, fleet: dict[str, FakeHost]
) -> None:
    lock = FleetLock("http://127.0.0.1:9/", "workers", timeout=1, backoff=0.1)
    options = RolloutOptions(reboot=False, fleetlock=lock)
    plan = RolloutPlan(ID, TARGET, (Host("a", "127.0.0.1", 9),), options, tmp_path / "j.jsonl")
    result = run_rollout(plan, False, lambda *_: None, lambda _: None)
    assert [(r.host, r.outcome) for r in result.reports] == [("a", "staged")]
    # Nor for a resume with no host left to change.
    done = replay(plan.journal_path, read_rows(plan.journal_path))
    earlier = ((Host("a", "127.0.0.1", 9), result.reports[0]),)
    resumed = RolloutPlan(ID, TARGET, (), RolloutOptions(fleetlock=lock), plan.journal_path,
                          earlier, done)  # fmt: skip
    again = run_rollout(resumed, False, lambda *_: None, lambda _: None)
    assert [(r.host, r.outcome) for r in again.reports] == [("a", "staged")]


def test_a_resumed_rollout_counts_the_failures_of_the_earlier_run(
    tmp_path: Path, fleet: dict[str, FakeHost]
) -> None:
    path = tmp_path / "j.jsonl"
    options = RolloutOptions(max_failures=1)
    journal = Journal.create(path, "rollout", {"id": ID, "target": TARGET.pinned, "hosts": ["a", "b"],
                                               "options": recorded_options(options)})  # fmt: skip
    failed = HostReport("a", "failed", "before", None, error="rebase failed", failure="rebase")
    journal.record("a", "failed", "ok", report=failed.as_dict())
    journal.close()
    done = replay(path, read_rows(path))
    a, b = Host("a", "127.0.0.1", 9), Host("b", "127.0.0.1", 9)
    plan = RolloutPlan(ID, TARGET, (b,), options, path, ((a, failed),), done)
    result = run_rollout(plan, False, lambda *_: None, lambda _: None)
    assert [(r.host, r.outcome) for r in result.reports] == [("a", "failed"), ("b", "skipped")]
    assert result.reports[1].hint == "the rollout's failure budget is spent"
    assert fleet["b"].commands == []  # the budget was spent before b's turn: b is untouched
    assert "a" not in fleet  # a failure is final: not even re-checked


def test_a_finished_host_that_refuses_the_key_is_unchecked_with_sshs_hint(
    fleet: dict[str, FakeHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fleet["a"] = FakeHost("a")

    def refuse(*_: Any, **__: Any) -> Any:
        raise SshError(fake.host, Failure.AUTH, "authentication refused: denied", "check the key")

    monkeypatch.setattr(fake, "run", refuse)
    now = _recheck(Host("a", "127.0.0.1", 9), report("a", "staged"), TARGET, SSH)
    assert (now.outcome, now.hint) == ("unchecked", "check the key")
    assert now.error == (
        "the journal says staged; re-checking it failed: authentication refused: denied"
    )


def test_a_finished_host_whose_status_is_unreadable_is_unchecked(
    fleet: dict[str, FakeHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fleet["a"] = FakeHost("a")
    monkeypatch.setattr(fake, "status_json", lambda: "not json")
    now = _recheck(Host("a", "127.0.0.1", 9), report("a", "updated"), TARGET, SSH)
    assert now.outcome == "unchecked"
    assert now.error is not None
    assert now.error.startswith(
        "the journal says updated; re-checking it failed: cannot read rpm-ostree status --json"
    )
