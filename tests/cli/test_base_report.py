"""What `nestcustom base from-iso` says about the image it made: the summary on stderr and
the --json document, field by field. Building from an ISO is the universe tests' job;
here the result is made by hand, so the report is pinned in seconds."""

from __future__ import annotations

import dataclasses

import pytest

from nestcustom.base.pipeline import BaseImage
from nestcustom.base.repos import Release
from nestcustom.cli.base import _as_json, _report

DIGEST = "sha256:" + "cd" * 32


def image(**changes: object) -> BaseImage:
    made = BaseImage(
        image_id="fedcba9876543210" * 4,
        reference="registry.example.com/newstart/base:v6.06",
        digest=DIGEST,
        variant="optimized",
        iso_name="NewStart-CGS-Linux-MAIN.V6.06-x86_64.dvd.iso",
        iso_sha256="12" * 32,
        release=Release("NewStart CGS Linux", "6.06", "x86_64", 1_700_000_000),
        packages=("bash-0:5.1.8-6.el9.x86_64", "rpm-0:4.16.1-1.el9.x86_64"),
        install_size=186_450_000,
        layer_size=176_049_999,
        left_out={
            "docs": {"bytes": 12_340_000, "files": 812},
            "locales": {"bytes": 70_000_000, "files": 9001},
        },
        dbpath="/usr/lib/sysimage/rpm",
        db_backend="sqlite",
        normalized=0,
        rpm_version="4.16.1.3",
        warnings=("the ISO's repo has no updateinfo",),
        from_cache=("metadata", "bootstrap"),
        seconds={"install": 1.23456, "image": 0.5},
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def test_the_json_document_holds_every_fact_of_the_image() -> None:
    assert _as_json(image()) == {
        "image_id": "fedcba9876543210" * 4,
        "reference": "registry.example.com/newstart/base:v6.06",
        "digest": DIGEST,
        "pinned": f"registry.example.com/newstart/base@{DIGEST}",
        "variant": "optimized",
        "iso": {"name": "NewStart-CGS-Linux-MAIN.V6.06-x86_64.dvd.iso", "sha256": "12" * 32},
        "release": {"name": "NewStart CGS Linux", "version": "6.06"},
        "packages": ["bash-0:5.1.8-6.el9.x86_64", "rpm-0:4.16.1-1.el9.x86_64"],
        "install_size": 186_450_000,
        "image_size": 176_049_999,
        "left_out": {
            "docs": {"bytes": 12_340_000, "files": 812},
            "locales": {"bytes": 70_000_000, "files": 9001},
        },
        "rpmdb": {
            "path": "/usr/lib/sysimage/rpm",
            "backend": "sqlite",
            "rpm": "4.16.1.3",
            "normalized": 0,
        },
        "warnings": ["the ISO's repo has no updateinfo"],
        "from_cache": ["metadata", "bootstrap"],
        "seconds": {"install": 1.235, "image": 0.5},
    }


def test_an_untagged_image_is_not_pinned() -> None:
    document = _as_json(image(reference=None, digest=None))
    assert (document["reference"], document["pinned"]) == (None, None)


def test_the_summary_says_what_the_image_is_and_what_was_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _report(image())
    assert capsys.readouterr().err.splitlines() == [
        "",
        "NewStart CGS Linux 6.06, optimized, from NewStart-CGS-Linux-MAIN.V6.06-x86_64.dvd.iso",
        "  packages   2 (the image's rpm lists exactly these; database /usr/lib/sysimage/rpm, "
        "sqlite, 4.16.1.3)",
        "  installed  186.4 MB (the packages' installed size)",
        "  image      176.0 MB, one layer, ID fedcba987654",
        "  left out   82.3 MB in all:",
        "    docs           12.3 MB  812 files",
        "    locales        70.0 MB  9001 files",
        "  cached     metadata and bootstrap from an earlier build of this ISO",
        "  warning: the ISO's repo has no updateinfo",
        "  tagged     registry.example.com/newstart/base:v6.06",
    ]


def test_a_rebuilt_berkeley_db_is_said_and_empty_parts_are_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _report(
        image(
            normalized=181, db_backend="bdb", left_out={}, from_cache=(), warnings=(),
            reference=None,
        )
    )  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert lines[3] == (
        "  rpmdb      Berkeley DB rebuilt reproducibly: 181 install times from the ISO's date, "
        "unused bytes zeroed"
    )
    assert len(lines) == 6  # no left out, cached, warning or tagged lines
