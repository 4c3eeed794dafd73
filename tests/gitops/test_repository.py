"""`nestcustom init`, then the generated pipeline's steps run locally, as CI would run them.

No CI service is involved: validate, `render --all --check`, `render --all` and
`matrix --changed-since` are run the way the pipelines run them, in a git
repository made by `init`, and what a user sees (exit codes, output) is asserted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nestcustom import __version__
from nestcustom.recipe.schema import recipe_schema
from tests.conftest import ROOT
from tests.gitops.helpers import commit_all, git, nestcustom, run_github_job

WEB = """\
name: web
description: a web host
base: {image: "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"}
include: [common/org.yaml]
layers:
  - {name: tools, install: [jq]}
"""
ORG = """\
labels: {org.example.team: platform}
"""
SCRIPTED = """\
name: scripted
description: runs a script
base: {image: "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"}
layers:
  - {name: setup, script: [scripts/setup.sh]}
"""
PLAIN = """\
name: plain
description: nothing shared
base: {image: "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"}
layers:
  - {name: tools, install: [tmux]}
"""


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr


def ok(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = nestcustom(*args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository made by init, committed, with recipes sharing files in three ways."""
    target = tmp_path / "images"
    result = ok("init", target, cwd=tmp_path)
    assert "file(s) written" in result.stdout
    (target / "recipes" / "common").mkdir()
    (target / "recipes" / "common" / "org.yaml").write_text(ORG)
    (target / "recipes" / "web.yaml").write_text(WEB)
    (target / "scripts").mkdir()
    (target / "scripts" / "setup.sh").write_text("#!/bin/sh\necho setting up\n")
    (target / "recipes" / "scripted.yaml").write_text(SCRIPTED)
    (target / "recipes" / "plain.yaml").write_text(PLAIN)
    ok("render", "--all", cwd=target)
    commit_all(target, "images")
    return target


def matrix_names(repo: Path, since: str) -> list[str]:
    result = ok("matrix", "--changed-since", since, cwd=repo)
    return [entry["name"] for entry in json.loads(result.stdout)["include"]]


def test_init_writes_a_repository_whose_checks_pass(tmp_path: Path) -> None:
    target = tmp_path / "images"
    result = ok("init", target, "--registry", "registry.example.org/team", cwd=tmp_path)
    for path in (
        "recipes/example.yaml",
        "files/motd",
        "containerfiles/example/Containerfile",
        "schema/recipe.schema.json",
        "README.md",
        ".pre-commit-config.yaml",
        ".gitlab-ci.yml",
        ".github/workflows/nestcustom.yml",
    ):
        assert (target / path).is_file(), path
        assert f"wrote {target / path}" in result.stdout or f"/{path}" in result.stdout
    # Nothing else at the top: a repository a user reviews before the first commit.
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [".github", ".gitignore", ".gitlab-ci.yml", ".pre-commit-config.yaml", "README.md",
         "containerfiles", "files", "recipes", "schema"]
    )  # fmt: skip
    # The editor's schema is the one validate uses.
    schema = json.loads((target / "schema/recipe.schema.json").read_text())
    assert schema == recipe_schema()
    example = (target / "recipes/example.yaml").read_text()
    assert example.startswith("# yaml-language-server: $schema=../schema/recipe.schema.json\n")
    for pipeline in (".gitlab-ci.yml", ".github/workflows/nestcustom.yml"):
        text = (target / pipeline).read_text()
        assert f'NESTCUSTOM_VERSION: "{__version__}"' in text
        assert "registry.example.org/team" in text
        assert "@" + "REGISTRY@" not in text and "@" + "VERSION@" not in text
    assert ok("validate", "recipes/example.yaml", cwd=target).stdout == "1 recipe(s) valid\n"
    check = ok("render", "--all", "--check", cwd=target)
    assert "up to date" in check.stdout


def test_init_refuses_to_overwrite_and_force_rewrites(tmp_path: Path) -> None:
    target = tmp_path / "images"
    ok("init", target, cwd=tmp_path)
    (target / "README.md").write_text("my own notes\n")
    again = nestcustom("init", target, cwd=tmp_path)
    assert again.returncode == 2
    no_traceback(again)
    assert "would be overwritten" in again.stderr and "README.md" in again.stderr
    assert "--force" in again.stderr
    assert (target / "README.md").read_text() == "my own notes\n"
    ok("init", target, "--force", cwd=tmp_path)
    assert (target / "README.md").read_text() != "my own notes\n"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--registry", "Registry.Example.com/UPPER"),
        ("--base", "not an image"),
        ("--default-branch", "a b"),
    ],
)
def test_init_refuses_bad_options_clearly(tmp_path: Path, option: str, value: str) -> None:
    result = nestcustom("init", tmp_path / "x", option, value, cwd=tmp_path)
    assert result.returncode == 2
    no_traceback(result)
    assert f"{option} {value!r} is not valid" in result.stderr
    assert not (tmp_path / "x").exists()


def test_init_into_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = nestcustom("init", tmp_path / "afile", cwd=tmp_path)
    assert result.returncode == 2
    no_traceback(result)
    assert "afile" in result.stderr


def test_editing_a_recipe_makes_render_check_fail_and_render_all_fixes_it(repo: Path) -> None:
    recipe = repo / "recipes" / "example.yaml"
    recipe.write_text(recipe.read_text().replace("install: [strace]", "install: [strace, tmux]"))
    stale = nestcustom("render", "--all", "--check", cwd=repo)
    assert stale.returncode == 1
    no_traceback(stale)
    assert "containerfiles/example/Containerfile" in stale.stdout + stale.stderr
    assert "containerfiles/web" not in stale.stdout + stale.stderr
    ok("render", "--all", cwd=repo)
    assert (
        "rpm-ostree install strace tmux"
        in (repo / "containerfiles/example/Containerfile").read_text()
    )
    assert ok("render", "--all", "--check", cwd=repo).returncode == 0


def test_matrix_lists_exactly_the_touched_recipes(repo: Path) -> None:
    start = git(repo, "rev-parse", "HEAD").strip()
    assert matrix_names(repo, start) == []
    # a copied file, uncommitted
    (repo / "files" / "motd").write_text("changed\n")
    assert matrix_names(repo, start) == ["example"]
    commit_all(repo, "motd")
    assert matrix_names(repo, start) == ["example"]
    # an include fragment only
    (repo / "recipes" / "common" / "org.yaml").write_text("labels: {org.example.team: web}\n")
    assert matrix_names(repo, start) == ["example", "web"]
    assert matrix_names(repo, "HEAD") == ["web"]
    commit_all(repo, "org")
    # a script
    (repo / "scripts" / "setup.sh").write_text("#!/bin/sh\necho again\n")
    assert matrix_names(repo, "HEAD") == ["scripted"]
    # the recipe itself
    plain = repo / "recipes" / "plain.yaml"
    plain.write_text(plain.read_text().replace("tmux", "htop"))
    assert matrix_names(repo, "HEAD") == ["plain", "scripted"]
    why = json.loads(ok("matrix", "--changed-since", start, cwd=repo).stdout)
    reasons = {e["name"]: e["reasons"] for e in why["include"]}
    assert reasons["web"] == ["include recipes/common/org.yaml changed"]
    assert reasons["example"] == ["file files/motd changed"]
    assert reasons["scripted"] == ["file scripts/setup.sh changed"]
    assert reasons["plain"] == ["recipe recipes/plain.yaml changed"]


def test_matrix_of_an_unknown_revision_is_every_recipe_with_a_note(repo: Path) -> None:
    result = ok("matrix", "--changed-since", "no-such-branch", cwd=repo)
    assert [e["name"] for e in json.loads(result.stdout)["include"]] == [
        "example",
        "plain",
        "scripted",
        "web",
    ]
    assert "'no-such-branch' is not a revision" in result.stderr


def test_matrix_formats_for_the_two_ci_services(repo: Path) -> None:
    (repo / "files" / "motd").write_text("changed\n")
    github = ok("matrix", "--changed-since", "HEAD", "--format", "github", cwd=repo).stdout
    assert github == (
        'matrix={"include":[{"name":"example","recipe":"recipes/example.yaml"}]}\ncount=1\n'
    )
    gitlab = ok("matrix", "--changed-since", "HEAD", "--format", "gitlab", cwd=repo).stdout
    assert gitlab == (
        "NESTCUSTOM_RECIPES=recipes/example.yaml\nNESTCUSTOM_NAMES=example\nNESTCUSTOM_COUNT=1\n"
    )
    git(repo, "checkout", "--", "files/motd")
    none = ok("matrix", "--changed-since", "HEAD", "--format", "gitlab", cwd=repo).stdout
    assert "NESTCUSTOM_COUNT=0\n" in none


def test_matrix_finds_the_project_from_a_sub_directory(repo: Path) -> None:
    (repo / "files" / "motd").write_text("changed\n")
    result = ok("matrix", "--changed-since", "HEAD", cwd=repo / "files")
    assert [e["name"] for e in json.loads(result.stdout)["include"]] == ["example"]


def test_matrix_outside_a_project_says_where_to_run_it(tmp_path: Path) -> None:
    result = nestcustom("matrix", cwd=tmp_path)
    assert result.returncode == 2
    no_traceback(result)
    assert "no recipes/ directory here or above" in result.stderr
    assert "--project" in result.stderr


def test_matrix_with_a_broken_recipe_points_at_it(repo: Path) -> None:
    (repo / "recipes" / "broken.yaml").write_text("name: broken\nlayers: [\n")
    result = nestcustom("matrix", "--changed-since", "HEAD", cwd=repo)
    assert result.returncode == 2
    no_traceback(result)
    assert "recipes/broken.yaml:" in result.stderr


@pytest.mark.parametrize(
    ("pipeline", "schema"),
    [
        (".github/workflows/nestcustom.yml", "vendor.github-workflows"),
        (".gitlab-ci.yml", "vendor.gitlab-ci"),
    ],
)
def test_generated_pipelines_pass_their_published_schemas(
    tmp_path: Path, pipeline: str, schema: str
) -> None:
    ok("init", tmp_path / "images", cwd=tmp_path)
    path = tmp_path / "images" / pipeline
    check = [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", schema]
    done = subprocess.run([*check, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # the checker does fail on a broken file: the assertion above can fail
    path.write_text(path.read_text().replace("stage:", "stagee:").replace("runs-on:", "runs_on:"))
    broken = subprocess.run([*check, str(path)], capture_output=True, text=True, check=False)
    assert broken.returncode != 0


def test_render_all_from_inside_another_git_repository(tmp_path: Path, repo: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    git(other, "init", "-q")
    out = repo / "rendered"
    result = nestcustom("render", "--all", "--recipes", repo / "recipes", "--out", out, cwd=other)
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    containerfile = (out / "web" / "Containerfile").read_text()
    assert containerfile == (repo / "containerfiles/web/Containerfile").read_text().replace(
        "containerfiles/", "rendered/"
    )
    assert (out / "nestcustom-build.sh").is_file()  # the helper every recipe shares, once
    assert list(other.iterdir()) == [other / ".git"]
    # --out outside the project: refused, naming both
    outside = nestcustom(
        "render", "--all", "--recipes", repo / "recipes", "--out", other / "out", cwd=other
    )
    assert outside.returncode == 2
    no_traceback(outside)
    assert f"{other / 'out'}: the output directory is outside the project directory {repo}" in (
        outside.stderr
    )
    relative = nestcustom(
        "render", "--all", "--recipes", repo / "recipes", "--out", "out", cwd=other
    )
    assert relative.returncode == 2
    no_traceback(relative)
    assert not (other / "out").exists()


def run_hooks(config: Path, repo: Path) -> list[subprocess.CompletedProcess[str]]:
    """Each hook of a pre-commit config run as pre-commit runs it on every tracked file."""
    tracked = git(repo, "ls-files").split()
    results = []
    for hook in yaml.safe_load(config.read_text())["repos"][0]["hooks"]:
        files = [f for f in tracked if re.search(hook["files"], f)]
        assert files, hook["id"]
        argv = hook["entry"].split()
        assert argv[0] == "nestcustom"
        extra = files if hook.get("pass_filenames", True) else []
        results.append(nestcustom(*argv[1:], *extra, cwd=repo))
    return results


def test_pre_commit_hooks_run_the_first_ci_stage(repo: Path) -> None:
    for config in (repo / ".pre-commit-config.yaml", ROOT / ".pre-commit-hooks.yaml"):
        if config.name == ".pre-commit-hooks.yaml":
            hooks = yaml.safe_load(config.read_text())
            wrapped = repo / "hooks-as-config.yaml"
            wrapped.write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}))
            config = wrapped
        assert [r.returncode for r in run_hooks(config, repo)] == [0, 0]
    plain = repo / "recipes" / "plain.yaml"
    plain.write_text(plain.read_text().replace("tmux", "htop"))
    validate, render_check = run_hooks(repo / ".pre-commit-config.yaml", repo)
    assert validate.returncode == 0
    assert render_check.returncode == 1
    assert "containerfiles/plain/Containerfile" in render_check.stdout + render_check.stderr


def test_matrix_of_a_project_in_a_sub_directory_of_its_repository(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    ok("init", top / "os" / "images", cwd=tmp_path)
    (top / "README").write_text("a monorepo\n")
    commit_all(top, "mono")
    project = top / "os" / "images"
    (top / "README").write_text("changed outside the project\n")
    assert matrix_names(project, "HEAD") == []
    (project / "files" / "motd").write_text("changed inside\n")
    assert matrix_names(project, "HEAD") == ["example"]
    (project / "files" / "new.txt").write_text("untracked\n")
    example = project / "recipes" / "example.yaml"
    motd = '  - {src: files/motd, dest: /etc/motd, mode: "0644"}\n'
    assert motd in example.read_text()
    example.write_text(
        example.read_text().replace(
            motd, motd + '  - {src: files/new.txt, dest: /etc/new.txt, mode: "0644"}\n'
        )
    )
    commit_all(top, "new file")
    why = json.loads(ok("matrix", "--changed-since", "HEAD~1", cwd=project).stdout)
    assert why["include"][0]["reasons"] == [
        "recipe recipes/example.yaml changed",
        "file files/motd changed",
        "file files/new.txt changed",
    ]


def shell_blocks(pipeline: dict[str, object]) -> list[str]:
    """Every shell script of a pipeline: GitLab's script lists, GitHub's run: steps."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("script", "before_script") and isinstance(value, list):
                    found.append("\n".join(str(line) for line in value))
                elif key == "run" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(pipeline)
    return found


@pytest.mark.parametrize("pipeline", [".gitlab-ci.yml", ".github/workflows/nestcustom.yml"])
def test_every_pipeline_script_is_valid_shell(tmp_path: Path, pipeline: str) -> None:
    ok("init", tmp_path / "images", cwd=tmp_path)
    document = yaml.safe_load((tmp_path / "images" / pipeline).read_text())
    scripts = shell_blocks(document)
    assert len(scripts) >= 5
    for script in scripts:
        # GitHub expressions are replaced before the shell sees the script
        text = re.sub(r"\$\{\{.*?\}\}", "EXPR", script)
        checked = subprocess.run(
            ["bash", "-n"], input=text, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, f"{checked.stderr}\n{text}"
    broken = subprocess.run(["bash", "-n"], input=b"if [ x ]; then\n", capture_output=True)
    assert broken.returncode != 0


def test_the_github_check_and_matrix_jobs_run(repo: Path) -> None:
    workflow = yaml.safe_load((repo / ".github/workflows/nestcustom.yml").read_text())
    assert run_github_job(workflow, "check", repo, {}) == {}
    before = git(repo, "rev-parse", "HEAD").strip()
    (repo / "recipes" / "common" / "org.yaml").write_text("labels: {org.example.team: web}\n")
    commit_all(repo, "org")
    event = {"github.event.pull_request.base.sha || github.event.before": before}
    outputs = run_github_job(workflow, "matrix", repo, event)
    assert outputs == {
        "matrix": '{"include":[{"name":"web","recipe":"recipes/web.yaml"}]}',
        "count": "1",
    }
    # the build job's matrix is what fromJSON makes of it: one job per recipe
    assert json.loads(outputs["matrix"])["include"] == [
        {"name": "web", "recipe": "recipes/web.yaml"}
    ]
    first_push = {"github.event.pull_request.base.sha || github.event.before": "0" * 40}
    everything = run_github_job(workflow, "matrix", repo, first_push)
    assert everything["count"] == "4"
