"""What `nestcustom test` reports for an image, check by check: the packages the layers
leave, the files and unit links the recipe made, kernel modules, the recipe's own tests,
in their order and each with its judgement. Run against an image root on this machine
(tests/image/imageroot.py): real sh, rpm and readlink, no podman."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from nestcustom.image.checks import CheckResult
from nestcustom.image.suite import run_checks
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe
from tests.gitops.rpms import Pkg
from tests.image.imageroot import ImageRoot, make_root

KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nnc\n-----END PGP PUBLIC KEY BLOCK-----\n"
DROPIN = "[Service]\nLimitNOFILE=4096\n"
DROPIN_PATH = "/usr/lib/systemd/system/nc-on.service.d/limits.conf"
DROPIN_SHA = hashlib.sha256(DROPIN.encode()).hexdigest()
KEY_SHA = hashlib.sha256(KEY.encode()).hexdigest()
UNIT = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
LOAD_CONF = "/usr/lib/modules-load.d/nestcustom-r.conf"

RECIPE = f"""\
name: r
base: {{image: {BASE}}}
layers:
  - name: a
    install:
      - "nc-two >= 2.0"
      - https://r.example/nc-one-1.0-2.noarch.rpm
      - https://r.example/odd.rpm
    remove: [nc-twin]
kernel-modules:
  - {{name: nc_demo}}
systemd:
  enable: [nc-on.service]
  mask: [nc-masked.service, nc-wrong.service]
  dropins: [{{unit: nc-on, src: files/limits.conf}}]
signing:
  scopes:
    - {{scope: reg.example.com/custom, key: files/key.pub.asc, lookaside: "https://sigs.example/"}}
tests:
  files:
    - {{path: /etc/motd, contains: Welcome}}
    - {{path: /etc/nc-absent-file, exists: false}}
"""


@pytest.fixture
def image(tmp_path: Path) -> ImageRoot:
    (tmp_path / "root").mkdir()
    packages = [Pkg("nc-one", "1.0", "1"), Pkg("nc-two", "2.5", "3"), Pkg("nc-twin", "1.1", "1")]
    root = make_root(tmp_path / "root", tmp_path, packages)
    etc = tmp_path / "root" / "etc"
    (etc / "systemd/system/nc-masked.service").symlink_to("/dev/null")
    (etc / "systemd/system/nc-wrong.service").symlink_to("/usr/lib/systemd/system/nc-wrong.service")
    (etc / "systemd/system/nc-on.service").write_text(UNIT)
    (etc / "systemd/system/multi-user.target.wants").mkdir()
    (etc / "systemd/system/multi-user.target.wants/nc-on.service").symlink_to(
        "/etc/systemd/system/nc-on.service"
    )
    (etc / "pki/containers").mkdir(parents=True)
    (etc / "pki/containers/key.pub.asc").write_text(KEY)
    (etc / "containers").mkdir()
    (etc / "containers/policy.json").write_text('{"keyPath": "/etc/pki/containers/key.pub.asc"}')
    (etc / "motd").write_text("Welcome to NestOS\n")
    return root


def test_every_check_of_an_image_in_order_with_its_judgement(
    write_recipe: WriteRecipe, project: Path, image: ImageRoot
) -> None:
    (project / "files" / "key.pub.asc").write_text(KEY)
    (project / "files" / "limits.conf").write_text(DROPIN)
    recipe = load_recipe(write_recipe(RECIPE)).recipe
    assert run_checks(recipe, image) == [
        CheckResult(
            "var", "/var", "no files or symlinks (a NestOS host drops /var)", True, "", True
        ),
        # the layers' packages: removed, at a version, an RPM file's own version, a URL
        # that names no package
        CheckResult(
            "package",
            "nc-twin",
            "absent",
            False,
            "installed: 1.1-1.noarch (layer a removes it)",
            True,
        ),
        CheckResult("package", "nc-two", "installed, version >= 2.0", True, "", True),
        CheckResult(
            "package",
            "nc-one",
            "installed, version 1.0-2",
            False,
            "installed version is 1.0-1 (layer a installs it)",
            True,
        ),
        CheckResult(
            "package",
            "https://r.example/odd.rpm",
            "installed",
            False,
            "cannot tell the package from the file name (not NAME-VERSION-RELEASE.ARCH.rpm; layer a)",
            True,
        ),
        # the drop-in (not in this image): its place, mode and content
        *(
            CheckResult("file", DROPIN_PATH, expectation, False, "missing", True)
            for expectation in ("exists", "mode 0644", f"content sha256 {DROPIN_SHA[:12]}")
        ),
        CheckResult("unit", "nc-masked.service", "masked", True, "", True),
        CheckResult(
            "unit",
            "nc-wrong.service",
            "masked",
            False,
            "links to /usr/lib/systemd/system/nc-wrong.service",
            True,
        ),
        # signing: the key, and policy.json naming it
        CheckResult("file", "/etc/pki/containers/key.pub.asc", "exists", True, "", True),
        CheckResult(
            "file",
            "/etc/pki/containers/key.pub.asc",
            f"content sha256 {KEY_SHA[:12]}",
            True,
            "",
            True,
        ),
        CheckResult("file", "/etc/containers/policy.json", "exists", True, "", True),
        CheckResult(
            "file",
            "/etc/containers/policy.json",
            "contains '/etc/pki/containers/key.pub.asc'",
            True,
            "",
            True,
        ),
        CheckResult(
            "module", "nc_demo", "installed for kernel ?", False, "the image's kernel is unknown"
        ),
        CheckResult("file", LOAD_CONF, "exists", False, "missing", True),
        CheckResult("file", LOAD_CONF, "contains 'nc_demo'", False, "missing", True),
        CheckResult("unit", "nc-on.service", "enabled", True, "", True),
        # the recipe's own tests come last, none lost
        CheckResult("file", "/etc/motd", "exists", True, ""),
        CheckResult("file", "/etc/motd", "contains 'Welcome'", True, ""),
        CheckResult("file", "/etc/nc-absent-file", "does not exist", True, ""),
    ]


def test_files_are_checked_for_the_owner_the_recipe_gives_them(
    write_recipe: WriteRecipe, project: Path, image: ImageRoot
) -> None:
    (project / "files" / "agent.conf").write_text("level=info\n")
    recipe = load_recipe(
        write_recipe(
            f"name: r\nbase: {{image: {BASE}}}\n"
            "stages: [{name: make, from: example.com/builder:1, layers: [{name: b, run: [['true']]}]}]\n"
            "files:\n"
            "  - {src: files/agent.conf, dest: /etc/agent.conf, owner: '990:990'}\n"
            "  - {from: make, src: /out/note, dest: /etc/note, owner: 'ncsvc'}\n"
            "  - {src: files/agent.conf, dest: /etc/plain.conf}\n"
        )
    ).recipe
    etc = image.root / "etc"
    for name in ("agent.conf", "note", "plain.conf"):
        (etc / name).write_text("level=info\n")
        (etc / name).chmod(0o644)
    os.chown(etc / "agent.conf", 990, 991)
    os.chown(etc / "note", 990, 990)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\nncsvc:x:990:990::/:/sbin/nologin\n")
    found = [
        (r.subject, r.expectation, r.detail)
        for r in run_checks(recipe, image)
        if r.subject.startswith("/etc/") and "owner" in r.expectation
    ]
    assert found == [
        ("/etc/agent.conf", "owner 990:990", "owner is 990:991"),  # no group 991 named
        ("/etc/note", "owner ncsvc", ""),  # a file out of a stage: its owner too
    ]
