"""The updater's units pass `systemd-analyze verify` in a root that holds them, their
scripts and the system's own units; its scripts pass `shellcheck -s sh`; the image gets
each file where the units look for it, and the timer and health check enabled."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nestcustom.containerfile import updater
from nestcustom.containerfile.render import Rendering, render_containerfile
from nestcustom.recipe.load import load_recipe
from tests.conftest import BASE, WriteRecipe

RECIPE = f"""\
name: r
base: {{image: {BASE}}}
layers: [{{name: a, install: [strace]}}]
systemd: {{enable: [sshd]}}
tests:
  commands:
    - {{run: [sh, -c, "test -d /etc && echo 'a \\"quoted\\" $word'"], exit: 0, timeout: 5}}
updates:
  ring: stable
  fleetlock: http://fleetlock.example.com:8080/
  group: workers
  schedule: Mon..Fri 02:00
  window: 2h
"""
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def rendered(write_recipe: WriteRecipe, text: str = RECIPE) -> Rendering:
    return render_containerfile(load_recipe(write_recipe(text)).recipe, "containerfiles/r")


def by_name(rendering: Rendering) -> dict[str, str]:
    return {f.name: f.content for f in rendering.files}


def image_root(tmp_path: Path, files: dict[str, str]) -> Path:
    """A root as the image has it: the system's units (for the targets ours name) and the
    updater's files at their destinations."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    (root / "etc").mkdir()
    for name, dest in (
        (updater.UPDATE_TIMER, f"{updater.UNIT_DIR}/{updater.UPDATE_TIMER}"),
        (updater.UPDATE_UNIT, f"{updater.UNIT_DIR}/{updater.UPDATE_UNIT}"),
        (updater.HEALTH_UNIT, f"{updater.UNIT_DIR}/{updater.HEALTH_UNIT}"),
        ("update.sh", updater.UPDATE_SCRIPT),
        ("health.sh", updater.HEALTH_SCRIPT),
        ("verify.sh", updater.VERIFY_SCRIPT),
        ("update.env", updater.ENV_FILE),
    ):
        path = root / dest.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name])
        path.chmod(0o755 if name.endswith(".sh") else 0o644)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    paths = [f"{updater.UNIT_DIR}/{unit}" for unit in units]
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", *paths],
        capture_output=True,
        text=True,
        check=False,
    )


needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not SYSTEM_UNITS.is_dir(),
    reason="systemd-analyze and the system's units are needed (scripts/setup-host)",
)


@needs_systemd
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path, write_recipe: WriteRecipe) -> None:
    root = image_root(tmp_path, by_name(rendered(write_recipe)))
    done = verify(root, updater.UPDATE_TIMER, updater.UPDATE_UNIT, updater.HEALTH_UNIT)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_systemd
def test_verify_catches_a_bad_unit_and_a_missing_script(
    tmp_path: Path, write_recipe: WriteRecipe
) -> None:
    """The check above can fail: systemd-analyze refuses what is wrong in this root."""
    files = by_name(rendered(write_recipe))
    files[updater.UPDATE_TIMER] = files[updater.UPDATE_TIMER].replace(
        "OnCalendar=Mon..Fri 02:00", "OnCalendar=Mon..Fri 25"
    )
    root = image_root(tmp_path, files)
    (root / updater.HEALTH_SCRIPT.lstrip("/")).unlink()
    done = verify(root, updater.UPDATE_TIMER, updater.HEALTH_UNIT)
    assert done.returncode != 0
    assert "Failed to parse calendar specification" in done.stderr
    assert f"Command {updater.HEALTH_SCRIPT} is not executable" in done.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck (scripts/setup-host)")
@pytest.mark.parametrize("name", ["update.sh", "health.sh", "verify.sh"])
def test_the_scripts_pass_shellcheck_as_posix_sh(
    tmp_path: Path, write_recipe: WriteRecipe, name: str
) -> None:
    script = tmp_path / name
    script.write_text(by_name(rendered(write_recipe))[name])
    done = subprocess.run(
        ["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, "")


def test_the_image_gets_every_file_enabled_and_zincati_off(write_recipe: WriteRecipe) -> None:
    rendering = rendered(write_recipe)
    text = rendering.containerfile
    for dest, mode in (
        (f"{updater.UNIT_DIR}/{updater.UPDATE_TIMER}", "0644"),
        (updater.UPDATE_SCRIPT, "0755"),
        (updater.HEALTH_SCRIPT, "0755"),
        (updater.VERIFY_SCRIPT, "0755"),
        (updater.ENV_FILE, "0644"),
        (updater.CHECKS_FILE, "0644"),
        (updater.TRUST_FILE, "0644"),
        (updater.ZINCATI_OFF, "0644"),
    ):
        assert f"        {dest} \\\n        {mode} \\\n" in text
    assert (
        "RUN systemctl enable nestcustom-health.service nestcustom-update.timer sshd.service"
        in (text)
    )
    files = by_name(rendering)
    assert files["zincati-off.toml"].endswith("[updates]\nenabled = false\n")
    assert files["update.env"].splitlines()[1:] == [
        'NESTCUSTOM_RING="stable"',
        'NESTCUSTOM_FLEETLOCK="http://fleetlock.example.com:8080/"',
        'NESTCUSTOM_GROUP="workers"',
        'NESTCUSTOM_IMAGE=""',
        'NESTCUSTOM_RETRY="300"',
        'NESTCUSTOM_HEALTH_TIMEOUT="600"',
    ]
    assert "OnCalendar=Mon..Fri 02:00\nRandomizedDelaySec=7200\n" in files[updater.UPDATE_TIMER]
    # The command's words are lines of their own: nothing of them is shell code.
    assert files["health-checks"].splitlines()[1:] == [
        "unit sshd.service",
        "cmd 5 0 3",
        "sh",
        "-c",
        "test -d /etc && echo 'a \"quoted\" $word'",
    ]


def test_the_trust_file_names_each_signing_scope_its_lookaside_and_installed_key(
    project: Path, write_recipe: WriteRecipe
) -> None:
    (project / "files" / "site.pub.asc").write_text(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ==\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    signing = (
        "signing:\n  default: reject\n  scopes:\n"
        "    - {scope: reg.example.com/custom, key: 'files/site.pub.asc',"
        " lookaside: 'https://sigs.example.com/'}\n"
    )
    files = by_name(rendered(write_recipe, RECIPE + signing))
    assert files["update-trust"].splitlines()[1:] == [
        "# default accept|reject: images no scope covers; TYPE SCOPE LOOKASIDE KEY a scope.",
        "default reject",
        "gpg reg.example.com/custom https://sigs.example.com/ /etc/pki/containers/site.pub.asc",
    ]
    assert by_name(rendered(write_recipe))["update-trust"].splitlines()[2:] == ["default accept"]


def test_deploy_and_the_updater_run_one_signature_check(write_recipe: WriteRecipe) -> None:
    from nestcustom.deploy import trust

    shipped = by_name(rendered(write_recipe))["verify.sh"]
    assert (
        shipped.replace("# Generated by nestcustom (its host-side updater). Do not edit.\n", "")
        == trust.VERIFY
    )


def test_no_updates_no_updater(write_recipe: WriteRecipe) -> None:
    rendering = rendered(write_recipe, RECIPE.split("updates:")[0])
    assert not {f.name for f in rendering.files} & {"update.sh", "update.env", updater.HEALTH_UNIT}
    assert "nestcustom-update" not in rendering.containerfile
    assert updater.ZINCATI_OFF not in rendering.containerfile


def test_deploy_disable_zincati_writes_what_the_image_ships(tmp_path: Path) -> None:
    """`deploy --disable-zincati` and an image with updates: turn Zincati off alike."""
    from nestcustom.deploy import hostrun

    target = tmp_path / "etc" / "zincati" / "config.d" / "90.toml"
    subprocess.run(["sh", "-c", hostrun._ZINCATI, "sh", str(target)], check=True)
    assert target.read_text() == updater.ZINCATI_OFF_TEXT


def test_render_all_owns_the_scripts_it_wrote_and_removes_them_with_updates(
    project: Path, write_recipe: WriteRecipe
) -> None:
    """The scripts carry the generated mark on the line after #!: `render --all` removes
    them when the recipe drops updates:, as every other file it wrote."""
    write_recipe(RECIPE)

    def render_all() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "nestcustom", "render", "--all"],
            cwd=project,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout + done.stderr

    render_all()
    script = project / "containerfiles" / "r" / "update.sh"
    assert script.read_text().startswith("#!/bin/sh\n# Generated by nestcustom")
    write_recipe(RECIPE.split("updates:")[0])
    assert "containerfiles/r/update.sh" in render_all()
    assert not script.exists()
