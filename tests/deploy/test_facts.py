"""The preflight facts as a host's one-command output gives them, odd output included."""

from __future__ import annotations

import json

import pytest

from nestcustom.deploy.hoststatus import parse_facts, parse_status
from nestcustom.errors import NestcustomError

STATUS = json.dumps(
    {"deployments": [{"id": "d0", "checksum": "aaa", "booted": True, "origin": "nestos:x"}]}
)
SECTIONS = {
    "status": STATUS,
    "arch": "x86_64",
    "machine-id": "m1",
    "boot-id": "b1",
    "rpm-ostree": "rpm-ostree:\n Version: '2022.16'",
    "lock": "",
}


def output(sections: dict[str, str]) -> str:
    return "".join(f"=={name}\n{text}\n" for name, text in sections.items()) + "==end\n"


def test_a_banner_before_the_first_section_and_blank_lines_are_ignored() -> None:
    text = "Welcome to NestOS\n\n" + output(
        {**SECTIONS, "arch": "\nx86_64\n", "machine-id": "m1\n"}
    )
    got = parse_facts(text)
    assert (got.arch, got.machine_id, got.boot_id, got.rpm_ostree) == (
        "x86_64",
        "m1",
        "b1",
        (2022, 16),
    )
    assert got.status == parse_status(STATUS)


def test_a_lock_of_several_lines_is_kept_as_written() -> None:
    lock = '{\n  "rollout": "r1",\n  "controller": "c:1"\n}'
    assert parse_facts(output({**SECTIONS, "lock": f"\n{lock}\n"})).lock == lock


@pytest.mark.parametrize(
    ("missing", "field", "value"),
    [
        ("arch", "arch", ""),
        ("machine-id", "machine_id", ""),
        ("boot-id", "boot_id", ""),
        ("rpm-ostree", "rpm_ostree", None),
        ("lock", "lock", ""),
    ],
)
def test_a_section_the_host_did_not_print_is_empty(missing: str, field: str, value: object) -> None:
    sections = {k: v for k, v in SECTIONS.items() if k != missing}
    assert getattr(parse_facts(output(sections)), field) == value


def test_no_status_section_is_an_unreadable_status_not_a_crash() -> None:
    sections = {k: v for k, v in SECTIONS.items() if k != "status"}
    with pytest.raises(NestcustomError) as caught:
        parse_facts(output(sections))
    assert caught.value.message.startswith("cannot read rpm-ostree status --json: ")
