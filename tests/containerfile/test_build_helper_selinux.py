"""The build helper's `selinux` refusals in a throwaway root: an image that cannot take
a policy module or a boolean is told why before anything is changed. (Installing modules
and setting booleans with the real semodule and setsebool is the universe's:
tests/image/test_selinux_universe.py.)"""

from __future__ import annotations

from tests.universe.helper_root import HelperRoot

CONFIG = "SELINUX=enforcing\nSELINUXTYPE=targeted\n"


def tools(box: HelperRoot, *names: str) -> None:
    """Programs by these names that must never run (each would leave a mark)."""
    for name in names:
        box.write(f"/usr/sbin/{name}", f"#!/bin/sh\ntouch /tmp/{name}-ran\n", mode=0o755)


def test_an_image_without_semodule_is_told_to_install_policycoreutils(box: HelperRoot) -> None:
    done = box.helper("selinux", "--module", "/run/nestcustom/m.cil")
    assert done.returncode == 1
    assert done.stderr == (
        "nestcustom: selinux: the image has no semodule: install policycoreutils in a layer, "
        "or build on a base that has it\n"
    )


def test_an_image_without_setsebool_only_matters_for_booleans(box: HelperRoot) -> None:
    tools(box, "semodule")
    done = box.helper("selinux", "--boolean", "httpd_can_network_connect", "on")
    assert done.stderr.startswith("nestcustom: selinux: the image has no setsebool: ")
    done = box.helper(
        "selinux", "--module", "/run/nestcustom/m.cil"
    )  # no policy yet: the next check
    assert done.stderr.startswith("nestcustom: selinux: /etc/selinux/config names no SELINUXTYPE")


def test_a_boolean_is_on_or_off(box: HelperRoot) -> None:
    tools(box, "semodule", "setsebool")
    done = box.helper("selinux", "--boolean", "a", "on", "--boolean", "b", "yes")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: selinux: boolean b: yes is neither on nor off\n",
    )
    assert not (box.root / "tmp/setsebool-ran").exists()


def test_selinux_unknown_option(box: HelperRoot) -> None:
    done = box.helper("selinux", "--permissive", "x")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: selinux: unknown option --permissive\n",
    )


def test_no_policy_type_no_policy(box: HelperRoot) -> None:
    tools(box, "semodule", "setsebool")
    box.write("/etc/selinux/config", "SELINUX=disabled\n")
    done = box.helper("selinux", "--module", "/run/nestcustom/m.cil", "--boolean", "a", "on")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: selinux: /etc/selinux/config names no SELINUXTYPE: the image has no "
        "SELinux policy\n",
    )


def test_no_policy_store_names_where_it_looked(box: HelperRoot) -> None:
    tools(box, "semodule")
    box.write("/etc/selinux/config", '  SELINUXTYPE = "mls" # a comment\nSELINUX=enforcing\n')
    done = box.helper("selinux", "--module", "/run/nestcustom/m.cil")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: selinux: no policy store at /var/lib/selinux/mls/active: install the "
        "image's policy (e.g. selinux-policy-targeted) in a layer first\n",
    )


def test_the_store_root_comes_from_semanage_conf_its_last_word(box: HelperRoot) -> None:
    tools(box, "semodule")
    box.write("/etc/selinux/config", CONFIG + "SELINUXTYPE=minimum\n")
    box.write("/etc/selinux/semanage.conf", "store-root = /srv/old\nstore-root=/etc/selinux  \n")
    done = box.helper("selinux", "--module", "/run/nestcustom/m.cil")
    assert done.stderr == (
        "nestcustom: selinux: no policy store at /etc/selinux/minimum/active: install the "
        "image's policy (e.g. selinux-policy-targeted) in a layer first\n"
    )


def test_nestos_refuses_a_store_the_host_drops(box: HelperRoot) -> None:
    tools(box, "semodule")
    box.write("/etc/selinux/config", CONFIG)
    (box.root / "var/lib/selinux/targeted/active").mkdir(parents=True)
    done = box.helper("selinux", "--nestos", "--module", "/run/nestcustom/m.cil")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: selinux: the policy store is /var/lib/selinux/targeted, which a NestOS "
        "host drops; rpm-ostree images keep it in /etc/selinux (store-root=/etc/selinux in "
        "/etc/selinux/semanage.conf)\n",
    )
    assert not (box.root / "tmp/semodule-ran").exists()


def test_a_module_from_the_image_must_be_there(box: HelperRoot) -> None:
    tools(box, "semodule")
    done = box.helper("selinux", "--module", "/usr/share/selinux/packages/agent.pp")
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: selinux: the image has no /usr/share/selinux/packages/agent.pp: "
        "install the package that ships it in an earlier layer\n",
    )
    assert not (box.root / "tmp/semodule-ran").exists()


def recording(box: HelperRoot, name: str, status: int = 0) -> None:
    """A stand-in that records its arguments, leaves libsemanage's lock files in the
    store, and says something on stderr when it fails with `status`."""
    failing = f"echo '{name}: it failed' >&2; exit {status}" if status else ""
    box.write(
        f"/usr/sbin/{name}",
        f"#!/bin/sh\nprintf '%s\\n' \"$*\" >>/var/log/{name}.calls\n"
        f"touch /etc/selinux/targeted/semanage.read.LOCK /etc/selinux/targeted/semanage.trans.LOCK\n"
        f"{failing}\n",
        mode=0o755,
    )


def policy(box: HelperRoot) -> None:
    box.write("/etc/selinux/config", CONFIG)
    box.write("/etc/selinux/semanage.conf", "store-root=/etc/selinux\n")
    box.write("/etc/selinux/targeted/active/modules/100/base/cil", "(base)\n")


def test_modules_then_booleans_are_handed_over_traced_in_one_line_each(box: HelperRoot) -> None:
    recording(box, "semodule")
    recording(box, "setsebool")
    policy(box)
    done = box.helper(
        "selinux", "--nestos", "--priority", "300", "--module", "/run/nestcustom/a.cil",
        "--boolean", "httpd_can_network_connect", "on", "--module", "/run/nestcustom/b.pp",
        "--boolean", "ftpd_full_access", "off",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        0,
        "+ semodule -N -X 300 -i /run/nestcustom/a.cil -i /run/nestcustom/b.pp\n"
        "+ setsebool -P -N httpd_can_network_connect=1 ftpd_full_access=0\n",
    )
    assert (box.root / "var/log/semodule.calls").read_text() == (
        "-N -X 300 -i /run/nestcustom/a.cil -i /run/nestcustom/b.pp\n"
    )
    assert (box.root / "var/log/setsebool.calls").read_text() == (
        "-P -N httpd_can_network_connect=1 ftpd_full_access=0\n"
    )
    store = box.root / "etc/selinux/targeted"
    # The store is where it was, with what it held; libsemanage's lock files are gone.
    assert sorted(p.name for p in store.iterdir()) == ["active"]
    assert (store / "active/modules/100/base/cil").read_text() == "(base)\n"


def test_a_module_semodule_refuses_stops_the_step_with_its_messages(box: HelperRoot) -> None:
    recording(box, "semodule", status=1)
    policy(box)
    done = box.helper("selinux", "--module", "/run/nestcustom/a.cil")
    assert (done.returncode, done.stderr) == (
        1,
        "+ semodule -N -X 400 -i /run/nestcustom/a.cil\nsemodule: it failed\n"
        "nestcustom: selinux: semodule could not install the modules (its messages are above)\n",
    )


def test_a_boolean_setsebool_refuses_stops_the_step_with_its_messages(box: HelperRoot) -> None:
    recording(box, "setsebool", status=2)
    policy(box)
    done = box.helper("selinux", "--boolean", "nc_undefined", "on")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "+ setsebool -P -N nc_undefined=1",
        "setsebool: it failed",
        "nestcustom: selinux: setsebool could not set the booleans (its messages are above); "
        "each must be defined by the image's policy or by one of the recipe's modules",
    ]
