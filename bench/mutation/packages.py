"""What each package's mutation run mutates, and which tests may kill its mutants.

Every module under nestcustom/ belongs to exactly one package (tests/test_mutation_table.py
checks that none is left out). The fast suite is the whole of it (`-m "not universe and not
slow"`): a mutant is tried against the fast tests that run its function, wherever they
live. The universe tests named here are tried only against the fast suite's survivors.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch


@dataclass(frozen=True)
class Package:
    name: str
    modules: tuple[str, ...]  # globs relative to the repository root
    universe: tuple[str, ...]  # universe test files tried against the fast survivors

    def owns(self, path: str) -> bool:
        return any(fnmatch(path, pattern) for pattern in self.modules)


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package(
            "ground",
            (
                "nestcustom/errors.py",
                "nestcustom/proc.py",
                "nestcustom/git.py",
                "nestcustom/__init__.py",
                "nestcustom/__main__.py",
                "nestcustom/keyformat.py",
                "nestcustom/sanitize.py",
            ),
            ("tests/cli/test_json_exits_universe.py", "tests/image/test_signing_universe.py"),
        ),
        Package(
            "recipe",
            ("nestcustom/recipe/*.py",),
            ("tests/image/test_customizations_universe.py", "tests/image/test_selinux_universe.py"),
        ),
        Package(
            "containerfile",
            ("nestcustom/containerfile/*.py",),
            (
                "tests/image/test_customizations_universe.py",
                "tests/image/test_selinux_universe.py",
                "tests/image/test_checks_agree_universe.py",
            ),
        ),
        Package(
            "image",
            ("nestcustom/image/*.py",),
            (
                "tests/image/test_signing_universe.py",
                "tests/image/test_build_universe.py",
                "tests/image/test_push_universe.py",
                "tests/image/test_verify_universe.py",
                "tests/image/test_checks_agree_universe.py",
                "tests/image/test_interrupt_universe.py",
                "tests/image/test_verify_signals_universe.py",
                "tests/image/test_customizations_universe.py",
                "tests/image/test_selinux_universe.py",
            ),
        ),
        Package(
            "base",
            ("nestcustom/base/*.py",),
            (
                "tests/base/test_from_iso_universe.py",
                "tests/base/test_bad_input_universe.py",
                "tests/base/test_recipe_on_base_universe.py",
            ),
        ),
        Package(
            "gitops",
            ("nestcustom/gitops/*.py",),
            (
                "tests/gitops/test_supply_universe.py",
                "tests/gitops/test_diff_universe.py",
                "tests/gitops/test_plan_universe.py",
                "tests/gitops/test_render_tags_universe.py",
                "tests/gitops/test_github_universe.py",
                "tests/gitops/test_gitlab_ci_universe.py",
            ),
        ),
        Package(
            "deploy",
            ("nestcustom/deploy/*.py",),
            (
                "tests/deploy/test_signed_deploy_universe.py",
                "tests/deploy/test_rollout_universe.py",
                "tests/deploy/test_trust_universe.py",
                "tests/deploy/test_fleet_emulator_universe.py",
            ),
        ),
        Package(
            "fleet",
            ("nestcustom/fleet/*.py",),
            ("tests/fleet/test_promote_universe.py",),
        ),
        Package(
            "cli",
            ("nestcustom/cli/*.py",),
            ("tests/cli/test_json_exits_universe.py", "tests/image/test_build_universe.py"),
        ),
    )
}

# The fast suite, as CI runs it, minus the tests that only compare generated text with a
# committed copy: a developer regenerates those (`render --all`, the README reference), so
# a mutant they alone notice is not caught. The linters (mypy --strict) are applied to the
# mutants as a whole instead (mutmut's type check), and the layout test reads the mutated
# files' sizes, not the product's. A mutated module imports mutmut before its own first
# line, so a Ctrl-C while Python starts lands in mutmut's import, not the product's.
FAST_MARKERS = "not universe and not slow"
# Modules another interpreter runs (Debian's python3, for python3-dnf): mutmut's trampolines
# import mutmut, which only this venv has, so their mutants could not run there at all.
OTHER_INTERPRETER = ("nestcustom/base/dnf_resolve.py",)

NOT_FAST = (
    "tests/test_static.py",
    "tests/test_layout.py",
    "tests/containerfile/test_render.py::test_golden_containerfile",
    "tests/containerfile/test_render.py::test_committed_containerfiles_are_fresh",
    "tests/cli/test_cli.py::test_the_reference_is_generated_from_the_schema",
    "tests/test_mutation_table.py",  # about bench/, which a run does not copy
    "tests/test_mutation_verdicts.py",  # the same
    "tests/fleet/test_fleet_simulation.py",  # runs bench/fleet; slow
    "tests/cli/test_signals.py::test_ctrl_c_while_python_starts_prints_no_traceback",
)


def package_of(path: str) -> str | None:
    """The package a module (a path relative to the repository root) belongs to."""
    owners = [p.name for p in PACKAGES.values() if p.owns(path)]
    return owners[0] if len(owners) == 1 else None
