"""The build helper's `repos` and `remove-matching` in a throwaway root: a base's
repository switched on or off in its .repo file, and packages removed by glob."""

from __future__ import annotations

from pathlib import Path

from tests.universe.helper_root import HelperRoot

REPOS = """\
[everything]
name=everything
baseurl=http://repo.example/everything
enabled=1
gpgcheck=1

[update]
name=update
enabled = 1
baseurl=http://repo.example/update
"""


def test_disable_and_enable_rewrite_only_their_sections_enabled_line(box: HelperRoot) -> None:
    box.write("/etc/yum.repos.d/openEuler.repo", REPOS)
    box.write("/etc/yum.repos.d/other.repo", "[extras]\nname=extras\nbaseurl=http://x\n")
    done = box.helper("repos", "--disable", "update", "--enable", "extras")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert box.path("/etc/yum.repos.d/openEuler.repo").read_text() == REPOS.replace(
        "[update]\nname=update\nenabled = 1\n", "[update]\nenabled=0\nname=update\n"
    )
    assert box.path("/etc/yum.repos.d/other.repo").read_text() == (
        "[extras]\nenabled=1\nname=extras\nbaseurl=http://x\n"
    )
    assert sorted(p.name for p in box.path("/etc/yum.repos.d").iterdir()) == [
        "openEuler.repo", "other.repo",
    ]  # fmt: skip


def test_a_section_named_like_a_prefix_of_another_is_its_own(box: HelperRoot) -> None:
    box.write("/etc/yum.repos.d/a.repo", "[up]\nenabled=1\n[update]\nenabled=1\n")
    done = box.helper("repos", "--disable", "up")
    assert done.returncode == 0
    assert (
        box.path("/etc/yum.repos.d/a.repo").read_text() == "[up]\nenabled=0\n[update]\nenabled=1\n"
    )


def test_a_last_line_without_newline_is_kept(box: HelperRoot) -> None:
    box.write("/etc/yum.repos.d/a.repo", "[a]\nenabled=0\nbaseurl=http://x")
    done = box.helper("repos", "--enable", "a")
    assert done.returncode == 0
    assert box.path("/etc/yum.repos.d/a.repo").read_text() == "[a]\nenabled=1\nbaseurl=http://x\n"


def test_every_file_that_has_the_section_is_changed(box: HelperRoot) -> None:
    box.write("/etc/yum.repos.d/a.repo", "[dup]\nenabled=1\n")
    box.write("/etc/yum.repos.d/b.repo", "[dup]\nenabled=1\n")
    box.write("/etc/yum.repos.d/c.repo.disabled", "[dup]\nenabled=1\n")
    done = box.helper("repos", "--disable", "dup")
    assert done.returncode == 0
    for name in ("a.repo", "b.repo"):
        assert box.path(f"/etc/yum.repos.d/{name}").read_text() == "[dup]\nenabled=0\n"
    assert box.path("/etc/yum.repos.d/c.repo.disabled").read_text() == "[dup]\nenabled=1\n"


def test_a_repo_no_file_has_stops_the_step(box: HelperRoot) -> None:
    box.write("/etc/yum.repos.d/a.repo", "[a]\nname=[b]\n")
    done = box.helper("repos", "--enable", "a", "--disable", "b", "--enable", "a")
    assert done.returncode == 1
    assert done.stderr == "nestcustom: repo b is not in any /etc/yum.repos.d/*.repo of the base\n"


def test_no_repo_files_at_all(box: HelperRoot) -> None:
    done = box.helper("repos", "--enable", "a")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: repo a is not in any /etc/yum.repos.d/*.repo of the base\n",
    )


def test_repos_unknown_option(box: HelperRoot) -> None:
    done = box.helper("repos", "--toggle", "a")
    assert (done.returncode, done.stderr) == (1, "nestcustom: repos: unknown option --toggle\n")


def test_remove_matching_removes_each_match_once_in_order(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    box.install_rpms(*tiny_rpms.values())
    done = box.helper("remove-matching", "nc-*", "nc-beta", "strace")
    assert (done.returncode, done.stderr) == (0, "")
    assert box.rpm_calls() == ["override remove nc-alpha nc-beta nc-gamma strace"]


def test_a_glob_nothing_matches_stops_before_any_removal(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    box.install_rpms(tiny_rpms["strace"])
    done = box.helper("remove-matching", "strace", "nc-*")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: no installed package matches 'nc-*'\n",
    )
    assert box.rpm_calls() == []


def test_globs_mean_what_a_shell_means_never_an_rpm_regular_expression(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    # `rpm -qa PATTERN` reads a regular expression: `nc-alph?` there is "nc-alp, h
    # optional" (nothing), and `?c-alpha` fails to compile, which lists every package.
    box.install_rpms(*tiny_rpms.values())
    done = box.helper("remove-matching", "nc-alph?", "?c-gamm[a]")
    assert (done.returncode, done.stderr) == (0, "")
    assert box.rpm_calls() == ["override remove nc-alpha nc-gamma"]
    done = box.helper("remove-matching", "?trace.x", "nc-b.ta")
    assert done.returncode == 1
    assert done.stderr == "nestcustom: no installed package matches '?trace.x'\n"
    assert box.rpm_calls() == ["override remove nc-alpha nc-gamma"]


def test_rpm_ostree_refusing_fails_the_step(box: HelperRoot, tiny_rpms: dict[str, Path]) -> None:
    box.install_rpms(tiny_rpms["strace"])
    box.write("/usr/bin/rpm-ostree", "#!/bin/sh\necho 'error: busy' >&2\nexit 3\n", mode=0o755)
    done = box.helper("remove-matching", "strace")
    assert (done.returncode, done.stderr) == (3, "error: busy\n")
