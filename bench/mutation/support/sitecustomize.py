"""Loaded by every Python a mutation run starts (PYTHONPATH): `python -m nestcustom` in a
test runs the mutated tree like the test itself. While mutmut maps tests to functions
(MUTANT_UNDER_TEST=stats), the functions such a child process runs are written to
NC_MUTATION_HITS/<pid>.hits at its exit, so a test that runs the CLI as a program counts
for the functions it reaches; bench/mutation/support/nc_mutation_plugin.py adds them to
the test's record."""

import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats" and os.environ.get("NC_MUTATION_HITS"):
    import atexit

    import mutmut.mutation.trampoline as _trampoline

    _hits: set[str] = set()

    def _record(name: str, caller: object = None) -> None:
        _hits.add(name)

    def _dump() -> None:
        if _hits:
            path = os.path.join(os.environ["NC_MUTATION_HITS"], f"{os.getpid()}.hits")
            with open(path, "w") as out:
                out.write("\n".join(sorted(_hits)))

    setattr(_trampoline, "record_trampoline_hit", _record)  # noqa: B010 (not exported)
    atexit.register(_dump)
