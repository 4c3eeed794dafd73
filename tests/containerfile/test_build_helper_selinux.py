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
