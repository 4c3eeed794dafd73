"""A package diff of two images as a pull-request comment (Markdown) and for tools (JSON),
fast: the images' facts and package changes are given, the report is checked line by line."""

from __future__ import annotations

import calendar
import dataclasses
import json
from typing import Any

import pytest

from nestcustom.gitops.diff import ImageDiff, update_cost
from nestcustom.gitops.diffreport import image_document, image_markdown, image_text
from nestcustom.gitops.imagedb import ImageDb, LayerInfo
from nestcustom.gitops.pkgdiff import Change, PackageDiff
from nestcustom.image.dblayers import FoundDb
from nestcustom.image.rpmdb import ChangelogEntry
from nestcustom.image.updatecost import UpdateCost, human_size


def as_json(diff: ImageDiff) -> Any:
    """The document as the CLI prints it (--format json): JSON through and through."""
    return json.loads(json.dumps(image_document(diff)))


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (1049, "1.0 KB"),
        (999_949, "999.9 KB"),
        (1_250_000, "1.2 MB"),
        (3_000_000_000, "3.0 GB"),
        (5_400_000_000_000, "5400.0 GB"),  # no unit above GB
    ],
)
def test_sizes_as_people_read_them(size: int, text: str) -> None:
    assert human_size(size) == text


DAY = calendar.timegm((2026, 11, 30, 12, 0, 0))
OLD = ImageDb(
    "registry.example.com/web|pipe:1",
    "registry",
    FoundDb("usr/share/rpm", "sqlite", {}),
    (LayerInfo("sha256:" + "1" * 64, 700_000_000), LayerInfo("sha256:" + "2" * 64, 1_500_000)),
    1,
    1_500_000,
)
NEW = ImageDb(
    "localhost/web:2",
    "local",
    FoundDb("usr/lib/sysimage/rpm", "sqlite", {}),
    (LayerInfo("sha256:" + "3" * 64, 900),),
    1,
    0,
)
LOG = (
    ChangelogEntry(DAY, "Ann <ann@nc.invalid> - 1.1-1", "- fix ``` fences\n- second line"),
    ChangelogEntry(DAY - 86400, "Bob <bob@nc.invalid> - 1.0-2", "- older"),
)
DIFF = ImageDiff(
    OLD,
    NEW,
    PackageDiff(
        (
            Change("bash", "x86_64", "5.1-1", "5.2-1", LOG),
            Change("nano", "x86_64", None, "7.2-1"),
            Change("strace", "noarch", "6.0-1", None),
            Change("vim|x", "", "9.0-2", "9.0-1"),
        )
    ),
    (412, 413),
)


def test_the_markdown_comment() -> None:
    assert image_markdown(DIFF) == "\n".join([
        "### Package changes",
        "",
        "| | image | packages | layers |",
        "|---|---|---|---|",
        "| A | `registry.example.com/web\\|pipe:1` | 412 | 2 layers, 701.5 MB compressed (registry) |",
        "| B | `localhost/web:2` | 413 | 1 layers, 900 B unpacked (local) |",
        "",
        "**1 added, 1 removed, 1 upgraded, 1 downgraded**",
        "",
        "| change | package | from | to |",
        "|---|---|---|---|",
        "| upgraded | `bash.x86_64` | 5.1-1 | 5.2-1 |",
        "| added | `nano.x86_64` |  | 7.2-1 |",
        "| removed | `strace.noarch` | 6.0-1 |  |",
        "| downgraded | `vim\\|x` | 9.0-2 | 9.0-1 |",
        "",
        "<details><summary>bash 5.1-1 → 5.2-1: changelog</summary>",
        "",
        "```",
        "* Mon Nov 30 2026 Ann <ann@nc.invalid> - 1.1-1",
        "- fix ''' fences",
        "- second line",
        "* Sun Nov 29 2026 Bob <bob@nc.invalid> - 1.0-2",
        "- older",
        "```",
        "</details>",
    ]) + "\n"  # fmt: skip


def test_a_long_changelog_is_cut_in_markdown_and_no_change_is_said() -> None:
    many = tuple(ChangelogEntry(DAY - n, f"P{n}", "- a\n- b") for n in range(10))
    diff = ImageDiff(OLD, NEW, PackageDiff((Change("bash", "x86_64", "1-1", "2-1", many),)), (1, 1))
    body = image_markdown(diff).split("```\n")[1].splitlines()
    assert len(body) == 21 and body[-1] == "..."
    assert body[:3] == ["* Mon Nov 30 2026 P0", "- a", "- b"]
    same = ImageDiff(OLD, NEW, PackageDiff(()), (7, 7))
    assert image_markdown(same).endswith(
        "| 1 layers, 900 B unpacked (local) |\n\nNo package changes.\n"
    )
    assert image_text(same).splitlines()[-1] == "No package changes."


def test_the_text_and_json_reports() -> None:
    assert image_text(DIFF).splitlines()[:5] == [
        "A: registry.example.com/web|pipe:1: 412 packages, 2 layers, 701.5 MB compressed (registry)",
        "B: localhost/web:2: 413 packages, 1 layers, 900 B unpacked (local)",
        "Added (1):",
        "  nano.x86_64 7.2-1",
        "Removed (1):",
    ]
    document = as_json(DIFF)
    assert document["a"] == {
        "reference": "registry.example.com/web|pipe:1",
        "where": "registry",
        "packages": 412,
        "rpmdb": "usr/share/rpm",
        "layers": [{"digest": "sha256:" + "1" * 64, "size": 700_000_000},
                   {"digest": "sha256:" + "2" * 64, "size": 1_500_000}],
        "layers_read": 1,
        "downloaded": 1_500_000,
    }  # fmt: skip
    assert document["b"]["rpmdb"] == "usr/lib/sysimage/rpm"
    assert document["changes"][0] == {
        "kind": "upgraded", "name": "bash", "arch": "x86_64", "old": "5.1-1", "new": "5.2-1",
        "changelog": [{"time": DAY, "author": "Ann <ann@nc.invalid> - 1.1-1",
                       "text": "- fix ``` fences\n- second line"},
                      {"time": DAY - 86400, "author": "Bob <bob@nc.invalid> - 1.0-2",
                       "text": "- older"}],
    }  # fmt: skip
    assert document["changes"][3]["arch"] is None
    nodb = ImageDb("x", "local", None, (), 3, 0)
    assert as_json(ImageDiff(nodb, NEW, PackageDiff(()), (0, 0)))["a"]["rpmdb"] is None


def test_the_update_a_host_downloads_is_said_in_every_format() -> None:
    """Only for two registry images: their layers carry the compressed digests hosts keep
    layers by (contract section 6)."""
    new = dataclasses.replace(
        NEW,
        where="registry",
        layers=(OLD.layers[0], LayerInfo("sha256:" + "4" * 64, 2_200_000), OLD.layers[1]),
    )
    diff = dataclasses.replace(DIFF, new=new, update=update_cost(OLD, new))
    assert diff.update == UpdateCost(1, 3, 2_200_000)
    line = (
        "Update: a host on A downloads 1 of B's 3 layers, 2.2 MB compressed (the layers it "
        "holds are kept by digest)"
    )
    assert image_text(diff).splitlines()[2] == line
    assert image_markdown(diff).splitlines()[7:10] == [
        line + "  ",
        "",
        "**1 added, 1 removed, 1 upgraded, 1 downgraded**",
    ]
    assert as_json(diff)["update"] == {"layers": 1, "of": 3, "bytes": 2_200_000}
    assert update_cost(OLD, NEW) is None  # B is local: diff IDs, unpacked sizes
    assert as_json(DIFF)["update"] is None
    assert "Update:" not in image_text(DIFF)
