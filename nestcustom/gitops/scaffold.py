"""`nestcustom init DIR`: a recipe repository, ready for review-driven CI.

Everything is made in memory first (the example recipe is loaded and rendered,
so `render --all --check` passes on the new repository), then written; a file
that already exists stops the whole run before anything is written, unless
`force` says to overwrite. The pipelines install nestcustom at the version
that ran `init`, so a repository keeps building the way it was made.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nestcustom import __version__
from nestcustom.containerfile.outputs import plan_outputs, write_atomically
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.schema import recipe_schema

DEFAULT_BASE = "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2.20230922.0-x86_64"
DEFAULT_REGISTRY = "registry.example.com/nestos"
_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_IMAGE = re.compile(r"^[a-z0-9][A-Za-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")

# template -> where it goes in the new repository
TEMPLATES = {
    "example.yaml": "recipes/example.yaml",
    "motd": "files/motd",
    "README.md": "README.md",
    "gitignore": ".gitignore",
    "pre-commit-config.yaml": ".pre-commit-config.yaml",
    "gitlab-ci.yml": ".gitlab-ci.yml",
    "github-workflow.yml": ".github/workflows/nestcustom.yml",
}
SCHEMA = "schema/recipe.schema.json"


# What the pipelines give pip to install nestcustom: this version from PyPI by default,
# else a pinned git ref or a wheel URL (an internal mirror, a fork, a release not on PyPI).
DEFAULT_INSTALL = f"nestcustom=={__version__}"
_INSTALL_SPECS = (
    re.compile(r"^nestcustom==[0-9][A-Za-z0-9.+!-]*$"),
    re.compile(
        r"^(nestcustom @ )?git\+https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/-]+@[A-Za-z0-9._/-]+$"
    ),
    re.compile(
        r"^(nestcustom @ )?https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~%/-]*"
        r"nestcustom-[0-9][A-Za-z0-9.+!_]*-py3-none-any\.whl(#sha256=[0-9a-f]{64})?$"
    ),
)


@dataclass(frozen=True)
class InitOptions:
    registry: str = DEFAULT_REGISTRY
    base: str = DEFAULT_BASE
    tls_verify: bool = True
    default_branch: str = "main"
    force: bool = False
    install: str = DEFAULT_INSTALL


def _check(options: InitOptions) -> None:
    for value, pattern, what, example in (
        (options.registry, _REGISTRY, "--registry", "registry.example.com/nestos"),
        (options.base, _IMAGE, "--base", DEFAULT_BASE),
        (options.default_branch, _BRANCH, "--default-branch", "main"),
    ):
        if not pattern.match(value):
            raise BadInputError(f"{what} {value!r} is not valid", f"for example {example}")
    if not any(pattern.match(options.install) for pattern in _INSTALL_SPECS):
        raise BadInputError(
            f"--install {options.install!r} is not a pinned nestcustom",
            f"give {DEFAULT_INSTALL}, a git ref (git+https://git.example.com/nestcustom.git@"
            "v0.1.0, best a commit), or a wheel URL (https://.../nestcustom-0.1.0-py3-none-any"
            ".whl#sha256=...); https only, so the pipelines install what was reviewed",
        )


def scaffold_files(options: InitOptions) -> dict[str, str]:
    """Relative path -> content of every file of the new repository."""
    _check(options)
    marks = {
        "@INSTALL@": options.install,
        "@VERSION@": __version__,
        "@REGISTRY@": options.registry,
        "@BASE@": options.base,
        "@TLS_VERIFY@": "true" if options.tls_verify else "false",
        "@TLS_FLAG@": "--tls-verify" if options.tls_verify else "--no-tls-verify",
        "@DEFAULT_BRANCH@": options.default_branch,
    }
    files: dict[str, str] = {}
    folder = resources.files("nestcustom.gitops").joinpath("templates")
    for template, target in TEMPLATES.items():
        text = folder.joinpath(template).read_text("utf-8")
        for mark, value in marks.items():
            text = text.replace(mark, value)
        files[target] = text
    files[SCHEMA] = json.dumps(recipe_schema(), indent=2) + "\n"
    files.update(_rendered(files))
    return files


def _rendered(files: dict[str, str]) -> dict[str, str]:
    """containerfiles/ for the example, rendered as `render --all` would."""
    with tempfile.TemporaryDirectory(prefix="nestcustom-init-") as tmp:
        root = Path(tmp).resolve()
        for relative, content in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(content, "utf-8")
        loaded = load_recipe(root / TEMPLATES["example.yaml"], root)
        plan = plan_outputs([loaded], root, root / "containerfiles")
        return {o.path.relative_to(root).as_posix(): o.content for o in plan.outputs}


def init_repository(target: Path, options: InitOptions) -> list[str]:
    """Write the repository into `target`; the paths written, relative to it."""
    files = scaffold_files(options)
    if target.exists() and not target.is_dir():
        raise BadInputError(f"{target}: exists and is not a directory")
    existing = sorted(p for p in files if (target / p).exists() or (target / p).is_symlink())
    if existing and not options.force:
        raise BadInputError(
            f"{target}: {len(existing)} file(s) would be overwritten: {', '.join(existing)}",
            "init writes a new repository; pass --force to overwrite these files",
        )
    try:
        for relative, content in files.items():
            path = target / relative
            if path.is_symlink():
                path.unlink()  # replace the link itself, never the file it points at
            write_atomically(path, content)
        (target / "containerfiles").mkdir(exist_ok=True)
    except OSError as exc:
        raise NestcustomError(f"{target}: cannot write: {exc.strerror}: {exc.filename}") from exc
    return sorted(files)
