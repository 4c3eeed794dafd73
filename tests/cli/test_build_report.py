"""What `nestcustom build` says about each recipe: the lines on stderr, the pinned
references on stdout, and each recipe's entry of the --json document. The builds
themselves are the universe tests'; here the outcomes are made by hand, so every field
of the report is pinned in seconds."""

from __future__ import annotations

import pytest

from nestcustom.cli.images import _build_json, _report_builds
from nestcustom.errors import NestcustomError
from nestcustom.image.build import Built, Outcome
from nestcustom.image.updatecost import UpdateCost

DIGEST = "sha256:" + "ab" * 32
IMAGE_ID = "0123456789abcdef" * 4


def built(**changes: object) -> Built:
    fields: dict[str, object] = {
        "name": "agent",
        "reference": "registry.example.com/nestos/agent:latest",
        "image_id": IMAGE_ID,
        "digest": DIGEST,
        "size": 252_400_000,
        "layers": 9,
        "step_names": ("FROM base", "RUN tools", "RUN agent"),
        "step_seconds": (0.1234, 5.4321, 2.0),
        "cached_steps": (1,),
        "seconds": 8.04449,
    }
    fields.update(changes)
    return Built(**fields)  # type: ignore[arg-type]


def test_a_built_image_is_one_json_entry_with_every_step() -> None:
    entry = _build_json(Outcome("agent", built()), ["registry.example.com/nestos/agent:1.2"])
    assert entry == {
        "name": "agent",
        "ok": True,
        "reference": "registry.example.com/nestos/agent:latest",
        "release_tags": ["registry.example.com/nestos/agent:1.2"],
        "image_id": IMAGE_ID,
        "digest": DIGEST,
        "pinned": f"registry.example.com/nestos/agent@{DIGEST}",
        "up_to_date": None,
        "size": 252_400_000,
        "layers": 9,
        "update": None,
        "seconds": 8.044,
        "steps": [
            {"step": 1, "name": "FROM base", "seconds": 0.123, "cached": True},
            {"step": 2, "name": "RUN tools", "seconds": 5.432, "cached": False},
            {"step": 3, "name": "RUN agent", "seconds": 2.0, "cached": False},
        ],
    }


def test_an_up_to_date_image_says_where_it_was_found() -> None:
    entry = _build_json(
        Outcome("agent", built(up_to_date="registry", step_seconds=(), cached_steps=())), []
    )
    assert (entry["up_to_date"], entry["steps"], entry["release_tags"]) == ("registry", [], [])


def test_a_failed_build_is_an_entry_with_its_error() -> None:
    failed = Outcome("tools", error=NestcustomError("step 2 failed", "see the log"))
    assert _build_json(failed, []) == {
        "name": "tools",
        "ok": False,
        "error": {"message": "step 2 failed", "hint": "see the log"},
    }
    assert _build_json(Outcome("tools"), []) == {"name": "tools", "ok": False, "error": None}


def test_the_report_says_what_each_build_did(capsys: pytest.CaptureFixture[str]) -> None:
    failed = NestcustomError("tools: step 2 failed", "read the step's output")
    failed.output = [f"line {i}" for i in range(12)]  # type: ignore[attr-defined]
    _report_builds(
        [
            Outcome("agent", built()),
            Outcome("tools", error=failed),
            Outcome("plain", error=NestcustomError("plain: no hint")),
        ],
        as_json=False,
    )
    out, err = capsys.readouterr()
    assert out == f"registry.example.com/nestos/agent@{DIGEST}\n"
    assert err.splitlines() == [
        "agent: built registry.example.com/nestos/agent:latest (0123456789ab, 9 layers, "
        "252 MB, 8.0 s, 1/3 steps cached)",
        "error: tools: step 2 failed",
        "  hint: read the step's output",
        *[f"  | line {i}" for i in range(4, 12)],  # the last 8 lines of its output
        "error: plain: no hint",
    ]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"cached_steps": (1, 2, 3)}, ", every step (3) from the cache"),
        ({"cached_steps": ()}, ", 0/3 steps cached"),
        ({"step_seconds": ()}, ", built before from the same inputs; pushed only"),
    ],
)
def test_the_report_says_how_much_came_from_the_cache(
    changes: dict[str, object], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _report_builds([Outcome("agent", built(**changes))], as_json=False)
    assert capsys.readouterr().err.rstrip("\n").endswith(f"8.0 s{words})")


@pytest.mark.parametrize(("where", "said"), [("local", "locally"), ("registry", "in the registry")])
def test_an_up_to_date_build_says_nothing_was_built(
    where: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _report_builds([Outcome("agent", built(up_to_date=where))], as_json=False)
    out, err = capsys.readouterr()
    assert err == (
        f"agent: up to date: registry.example.com/nestos/agent:latest (0123456789ab) {said} "
        "was built from the same inputs; nothing built\n"
    )
    assert out == f"registry.example.com/nestos/agent@{DIGEST}\n"


def test_with_json_stdout_holds_no_pinned_reference(capsys: pytest.CaptureFixture[str]) -> None:
    _report_builds([Outcome("a", built()), Outcome("b", built(up_to_date="local"))], as_json=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 2


def test_an_unpushed_build_pins_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    _report_builds([Outcome("agent", built(digest=None))], as_json=False)
    assert capsys.readouterr().out == ""
    assert _build_json(Outcome("agent", built(digest=None)), [])["pinned"] is None


PREVIOUS = "sha256:" + "cd" * 32


def test_a_push_over_an_image_says_what_its_hosts_download(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pushed = built(update_from=PREVIOUS, update=UpdateCost(5, 12, 2_216_000))
    _report_builds([Outcome("agent", pushed)], as_json=False)
    assert capsys.readouterr().err.splitlines()[1] == (
        "agent: update: a host on the image the tag named before (sha256:cdcdcdcdcdcd) "
        "downloads 5 of 12 layers, 2.2 MB compressed"
    )
    assert _build_json(Outcome("agent", pushed), [])["update"] == {
        "from": PREVIOUS,
        "layers": 5,
        "of": 12,
        "bytes": 2_216_000,
    }


def test_a_first_push_says_nothing_of_an_update(capsys: pytest.CaptureFixture[str]) -> None:
    _report_builds([Outcome("agent", built())], as_json=False)
    assert "update" not in capsys.readouterr().err
