"""The built-in checks of a layer's own files, of RPM files a layer installed from an image
(named by the list the image carries), and of one user's units: what they report for an
image root on this machine (tests/image/imageroot.py), with the real rpm and sh."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nestcustom.image.checks import CheckResult
from nestcustom.image.languagechecks import language_checks
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe
from tests.gitops.rpms import Pkg
from tests.image.imageroot import ImageRoot, make_root

RPMS = "reg.example.com/rpms:1@sha256:" + "e" * 64
RECIPE = f"""\
name: r
base: {{image: {BASE}}}
layers:
  - name: a
    install: [{{from: "{RPMS}", path: /out/*.rpm}}]
    files: [{{src: files/motd, dest: /etc/nc-motd, mode: "0640"}}]
systemd:
  user-units: [{{user: core, enable: [nc-agent.service, nc-idle.service]}}]
"""


@pytest.fixture
def image(tmp_path: Path) -> ImageRoot:
    (tmp_path / "root").mkdir()
    root = make_root(tmp_path / "root", tmp_path, [Pkg("nc-one", "1.0", "1")])
    motd = root.root / "etc/nc-motd"
    motd.write_text("hello\n")  # the project's files/motd
    motd.chmod(0o640)
    lists = root.usr / "share/nestcustom/rpms"
    lists.mkdir(parents=True)
    (lists / "a.list").write_text(
        f"{'1' * 64} nc-one-1.0-1.noarch /out/nc-one-1.0-1.noarch.rpm\n"
        f"{'2' * 64} nc-gone-2.0-1.noarch /out/nc-gone-2.0-1.noarch.rpm\n"
    )
    dropin = root.usr / "lib/systemd/user/nc-agent.service.d/50-nestcustom-user.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Unit]\nConditionUser=|core\n")
    wants = root.root / "etc/systemd/user/default.target.wants"
    wants.mkdir(parents=True)
    (wants / "nc-agent.service").symlink_to("/usr/lib/systemd/user/nc-agent.service")
    return root


def test_layer_files_local_rpms_and_user_units_are_judged(
    write_recipe: WriteRecipe, project: Path, image: ImageRoot
) -> None:
    recipe = load_recipe(write_recipe(RECIPE)).recipe
    motd_sha = hashlib.sha256(b"hello\n").hexdigest()
    origin = f"installed from {RPMS} (layer a)"
    agent = "/usr/lib/systemd/user/nc-agent.service.d/50-nestcustom-user.conf"
    idle = "/usr/lib/systemd/user/nc-idle.service.d/50-nestcustom-user.conf"
    no_link = "no /etc/systemd/user/*.wants/ link (systemctl --global enable)"
    assert language_checks(recipe, image) == [
        CheckResult("file", "/etc/nc-motd", "exists", True, "", True),
        CheckResult("file", "/etc/nc-motd", "mode 0640", True, "", True),
        CheckResult("file", "/etc/nc-motd", f"content sha256 {motd_sha[:12]}", True, "", True),
        # each RPM file the layer's list names, by its NEVRA in the rpm database
        CheckResult("package", "nc-one-1.0-1.noarch", origin, True, "", True),
        CheckResult(
            "package", "nc-gone-2.0-1.noarch", origin, False, "not in the rpm database", True
        ),
        CheckResult("file", agent, "exists", True, "", True),
        CheckResult("file", agent, "contains 'ConditionUser=|core'", True, "", True),
        CheckResult("unit", "nc-agent.service", "enabled for core's manager", True, "", True),
        CheckResult("file", idle, "exists", False, "missing", True),
        CheckResult("file", idle, "contains 'ConditionUser=|core'", False, "missing", True),
        CheckResult("unit", "nc-idle.service", "enabled for core's manager", False, no_link, True),
    ]
