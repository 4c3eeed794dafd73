"""The scaffolded pipelines sign in CI with a key from a CI secret: their publishing command,
run by sh as the runner runs it (nestcustom replaced by a stand-in that prints its
arguments), passes --sign, the passphrase file and --sbom exactly when a key is given."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import yaml

from tests.gitops.helpers import nestcustom

STAND_IN = 'nestcustom() { printf "%s\\n" "$@"; }\ntee() { cat; }\n'


def scaffold(tmp_path: Path) -> Path:
    done = nestcustom("init", str(tmp_path / "images"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "images"


def run(script: str, env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run(
        ["sh", "-c", STAND_IN + script],
        env={"PATH": os.environ["PATH"], **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_gitlab_signs_on_the_default_branch_when_the_key_variable_is_set(tmp_path: Path) -> None:
    repo = scaffold(tmp_path)
    pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    [publish] = [s for s in pipeline["build"]["script"] if "--push" in s]
    base = {"NESTCUSTOM_COUNT": "1", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
    base |= {"NESTCUSTOM_RECIPES": "recipes/a.yaml", "REGISTRY": "reg.example.com/x", "tls": ""}
    (repo / "reports").mkdir()
    unsigned = run(publish, base, repo)
    assert "--push" in unsigned and "--sign" not in unsigned and "--sbom" not in unsigned
    signing = {
        "NESTCUSTOM_SIGNING_KEY": "/builds/tmp/KEY file",
        "NESTCUSTOM_SIGNING_PASSPHRASE": "/builds/tmp/PASS",
        "NESTCUSTOM_SIGNATURE_STORE": "https://dav.example.com/sigs/",
    }
    argv = run(publish, base | signing, repo)
    at = argv.index("--sign")
    assert argv[at + 1] == "/builds/tmp/KEY file"  # one argument, spaces and all
    assert argv[argv.index("--sign-passphrase-file") + 1] == "/builds/tmp/PASS"
    assert argv[argv.index("--signature-store") + 1] == "https://dav.example.com/sigs/"
    assert "--sbom" in argv


def test_github_writes_the_secrets_to_private_files_and_signs(tmp_path: Path) -> None:
    repo = scaffold(tmp_path)
    workflow = yaml.safe_load((repo / ".github/workflows/nestcustom.yml").read_text())
    [step] = [
        s for s in workflow["jobs"]["build"]["steps"] if s.get("name") == "push with release tags"
    ]
    assert step["env"]["SIGNING_KEY"] == "${{ secrets.NESTCUSTOM_SIGNING_KEY }}"
    script = (
        step["run"]
        .replace("${{ matrix.recipe }}", "recipes/a.yaml")
        .replace("${{ matrix.name }}", "a")
    )
    runner = tmp_path / "runner"
    runner.mkdir()
    env = {"IMAGE": "reg.example.com/x/a:latest", "TLS_FLAG": "", "RUNNER_TEMP": str(runner)}
    assert "--sign" not in run(script, env | {"SIGNING_KEY": ""}, repo)
    argv = run(
        script,
        env | {"SIGNING_KEY": "-----BEGIN PGP PRIVATE KEY BLOCK-----", "SIGNING_PASSPHRASE": "pw"},
        repo,
    )
    key = runner / "signing-key.asc"
    assert argv[argv.index("--sign") + 1] == str(key) and "--sbom" in argv
    assert key.read_text() == "-----BEGIN PGP PRIVATE KEY BLOCK-----\n"
    assert (runner / "signing-pass").read_text() == "pw\n"
    for path in (key, runner / "signing-pass"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
