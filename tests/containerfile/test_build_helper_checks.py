"""The build helper's `check` in a throwaway root: the built-in checks that stop a build
before anything is tagged (packages and files the recipe promised, and what a NestOS host
would drop), each failure on its own line, all of them before the step fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.universe.helper_root import HelperRoot

FAILED = "nestcustom: {} check(s) failed; no image was tagged"


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_installed_packages_and_present_files_pass(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    box.install_rpms(tiny_rpms["strace"])
    box.write("/etc/agent.conf", "x\n")
    (box.root / "etc/dangling").symlink_to("/nowhere")
    done = box.helper(
        "check", "--package", "strace", "--file", "/etc/agent.conf", "--file", "/etc/dangling"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_every_missing_package_and_file_is_named_then_the_step_fails(
    box: HelperRoot, tiny_rpms: dict[str, Path]
) -> None:
    box.install_rpms(tiny_rpms["strace"])
    done = box.helper(
        "check", "--package", "strace", "--package", "nc-missing", "--file", "/etc/none",
        "--package", "nc-other",
    )  # fmt: skip
    assert done.returncode == 1
    assert lines(done.stderr) == [
        "nestcustom check: package nc-missing is not installed",
        "nestcustom check: /etc/none does not exist",
        "nestcustom check: package nc-other is not installed",
        FAILED.format(3),
    ]


def test_unknown_option(box: HelperRoot) -> None:
    done = box.helper("check", "--file", "/etc/passwd", "--frob", "x")
    assert (done.returncode, done.stderr) == (1, "nestcustom: check: unknown option --frob\n")


def test_host_rules_pass_on_a_root_the_recipe_did_not_touch(box: HelperRoot) -> None:
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


def test_host_rules_are_off_unless_asked(box: HelperRoot) -> None:
    box.write("/var/lib/agent/state", "x\n")
    box.write("/usr/local/bin/tool", "x\n")
    done = box.helper("check", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


def test_var_content_the_recipe_added_is_named(box: HelperRoot) -> None:
    box.write("/var/lib/agent/state", "x\n")
    box.write("/var/cache/dnf/junk", "x\n")  # caches and /var/tmp: the commit cleans them
    box.write("/var/tmp/scratch", "x\n")
    (box.root / "var/lib/empty-dir").mkdir(parents=True)  # directories are fine
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert done.returncode == 1
    assert lines(done.stderr) == [
        "nestcustom check: /var/lib/agent/state: a NestOS host drops /var content; "
        "create it at boot (tmpfiles.d)",
        FAILED.format(1),
    ]


def test_var_content_the_base_already_had_is_not_the_recipes_doing(box: HelperRoot) -> None:
    for top in ("var", "base/var"):
        path = box.root / top / "lib/rpm-state/x"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


def test_without_a_base_everything_found_counts(box: HelperRoot) -> None:
    for top in ("var", "base/var"):
        path = box.root / top / "lib/x"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    done = box.helper("check", "--host-rules")
    found = lines(done.stderr)
    # /var first (nothing under /usr/local), then the machine's /usr links into its own
    # /etc, which this root's /etc does not have: no base, so they are the recipe's too.
    assert found[0] == (
        "nestcustom check: /var/lib/x: a NestOS host drops /var content; create it at boot "
        "(tmpfiles.d)"
    )
    assert len(found) > 3 and found[-1] == FAILED.format(len(found) - 1)


def test_usr_local_files_the_recipe_added_are_named(box: HelperRoot) -> None:
    box.write("/usr/local/bin/agent", "x\n")
    box.write("/usr/local/share/agent/dir/.keep", "")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert done.returncode == 1
    assert sorted(lines(done.stderr)[:-1]) == [
        "nestcustom check: /usr/local/bin/agent: /usr/local is /var/usrlocal on a NestOS host; "
        "the host drops it",
        "nestcustom check: /usr/local/share/agent/dir/.keep: /usr/local is /var/usrlocal on a "
        "NestOS host; the host drops it",
    ]
    assert lines(done.stderr)[-1] == FAILED.format(2)


def test_usr_local_content_the_base_had_is_not_the_recipes_doing(box: HelperRoot) -> None:
    box.write("/usr/local/bin/agent", "x\n")
    (box.root / "base/usr").rmdir()
    (box.root / "base/usr").symlink_to("../usr")  # the base: this very /usr
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


def test_usr_local_as_a_link_is_the_hosts_own_and_not_looked_into(box: HelperRoot) -> None:
    # On NestOS /usr/local is a link to /var/usrlocal: nothing under it is the image's.
    shutil.rmtree(box.top / "upper/local")
    box.link("/usr/local", "../var/usrlocal")
    box.write("/var/usrlocal/bin/x", "x\n")
    (box.root / "base/var/usrlocal/bin").mkdir(parents=True)
    (box.root / "base/var/usrlocal/bin/x").write_text("x\n")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


HOST_TREES = ("/var", "/run", "/proc", "/sys", "/dev", "/tmp", "/sysroot", "/boot", "/home",
              "/root", "/srv", "/mnt", "/media", "/opt")  # fmt: skip


def test_links_into_the_hosts_own_trees_may_point_nowhere_yet(box: HelperRoot) -> None:
    for n, tree in enumerate(HOST_TREES):
        box.link(f"/etc/state{n}", f"{tree}/nc-missing/x")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("tree", HOST_TREES)
def test_only_under_the_hosts_own_trees(box: HelperRoot, tree: str) -> None:
    box.link("/etc/near", f"{tree}-like/x")  # /var-like is not /var
    box.link("/etc/bare", tree + "x")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert sorted(lines(done.stderr)[:-1]) == [
        f"nestcustom check: /etc/bare -> {tree}x: the symlink points nowhere",
        f"nestcustom check: /etc/near -> {tree}-like/x: the symlink points nowhere",
    ]


def test_a_link_pointing_nowhere_is_named_with_its_target(box: HelperRoot) -> None:
    (box.root / "etc/agent.conf").symlink_to("/etc/agent/missing.conf")
    box.link("/usr/lib/agent-current", "agent-v9")
    (box.root / "etc/fine").symlink_to("/etc/passwd")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert done.returncode == 1
    assert sorted(lines(done.stderr)[:-1]) == [
        "nestcustom check: /etc/agent.conf -> /etc/agent/missing.conf: the symlink points nowhere",
        "nestcustom check: /usr/lib/agent-current -> agent-v9: the symlink points nowhere",
    ]
    assert lines(done.stderr)[-1] == FAILED.format(2)


def test_a_broken_link_the_base_had_the_same_way_is_not_the_recipes(box: HelperRoot) -> None:
    for top in ("etc", "base/etc"):
        (box.root / top / "old").symlink_to("/etc/gone")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert (done.returncode, done.stderr) == (0, "")


def test_a_broken_link_the_base_had_pointing_elsewhere_is_named(box: HelperRoot) -> None:
    (box.root / "etc/old").symlink_to("/etc/gone-now")
    (box.root / "base/etc/old").symlink_to("/etc/gone")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert lines(done.stderr) == [
        "nestcustom check: /etc/old -> /etc/gone-now: the symlink points nowhere",
        FAILED.format(1),
    ]


def test_a_broken_link_where_the_base_had_a_file_is_named(box: HelperRoot) -> None:
    (box.root / "etc/was-a-file").symlink_to("/etc/gone")
    (box.root / "base/etc/was-a-file").write_text("x\n")
    done = box.helper("check", "--host-rules", "--base", "/base")
    assert lines(done.stderr)[0] == (
        "nestcustom check: /etc/was-a-file -> /etc/gone: the symlink points nowhere"
    )


def test_host_rule_failures_and_promised_files_add_up(box: HelperRoot) -> None:
    box.write("/var/lib/a", "x\n")
    done = box.helper("check", "--file", "/etc/none", "--host-rules", "--base", "/base")
    assert done.returncode == 1
    assert lines(done.stderr) == [
        "nestcustom check: /etc/none does not exist",
        "nestcustom check: /var/lib/a: a NestOS host drops /var content; create it at boot "
        "(tmpfiles.d)",
        FAILED.format(2),
    ]
    assert not (box.root / "tmp/nestcustom-found").exists()  # its scratch list is removed
