"""The bootstrap (the ISO's rpm, checked and unpacked by the host's rpm), with real
rpmkeys and rpm: unpacked fresh without a cache, kept in the ISO's cache entry when
checked, and reused from there so its packages are not even copied off the ISO again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nestcustom.base import bootstrap, install, isocache
from nestcustom.base.resolve import Package, Plan
from nestcustom.errors import BadInputError, NestcustomError
from tests.gitops.test_rpmdb_fast import BuiltDb, build_db


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltDb, Path]:
    work = tmp_path_factory.mktemp("signed")
    return build_db(work), work / "key.asc"


def _package(name: str, path: Path) -> Package:
    return Package(
        name,
        0,
        "1",
        "1",
        "noarch",
        "BaseOS",
        path.name,
        f"BaseOS/{path.name}",
        "sha256",
        name * 4,
        path.stat().st_size,
        100,
    )


def _plan(built: BuiltDb) -> tuple[Plan, list[Path]]:
    rpms = [built.rpms["nc-sbom"], built.rpms["libnc-sbom"]]
    image = (_package("nc-plain", built.rpms["nc-plain"]),)
    return Plan(image, tuple(_package(p.name.split("-")[0], p) for p in rpms)), rpms


def test_without_a_cache_the_bootstrap_is_unpacked_into_the_stage(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    built, key = signed
    plan, rpms = _plan(built)
    said: list[str] = []
    boot = bootstrap.prepare(
        entry=None,
        plan=plan,
        rpms=rpms,
        keys=[key],
        stage=tmp_path,
        work=tmp_path,
        gpgcheck=True,
        on_text=said.append,
    )
    assert boot == bootstrap.Bootstrap(tmp_path / "bootstrap", None, False)
    assert (boot.root / "usr/share/nc-sbom/a").read_text() == "a\n"
    assert (boot.root / "usr/share/nc-sbom/b").read_text() == "b\n"
    assert not (boot.root / "var/lib/nestcustom-bootstrap-db").exists()  # host rpm's db
    assert said == [
        "checking the ISO's rpm with the host's rpm",
        "unpacking the ISO's rpm (2 packages)",
    ]
    # without a kept bootstrap, its packages must be copied off the ISO with the image's
    assert bootstrap.needed_packages(plan, None, True) == (*plan.packages, *plan.bootstrap)


def test_an_unsigned_bootstrap_is_refused_before_anything_is_unpacked(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    built, key = signed
    plan, rpms = _plan(built)
    rpms = [*rpms, built.rpms["nc-plain"]]
    with pytest.raises(BadInputError, match=re.escape("nc-plain-3.0-7.noarch.rpm")):
        bootstrap.prepare(
            entry=None,
            plan=plan,
            rpms=rpms,
            keys=[key],
            stage=tmp_path,
            work=tmp_path,
            gpgcheck=True,
            on_text=lambda _: None,
        )
    assert not (tmp_path / "bootstrap").exists()


def test_a_checked_bootstrap_is_kept_and_the_next_build_reuses_it(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    built, key = signed
    plan, rpms = _plan(built)
    cache = isocache.open_cache(tmp_path / "cache")
    assert cache is not None
    entry = cache.entry("ab" * 32)
    stage = tmp_path / "stage"
    first = bootstrap.prepare(
        entry=entry,
        plan=plan,
        rpms=rpms,
        keys=[key],
        stage=stage,
        work=tmp_path,
        gpgcheck=True,
        on_text=lambda _: None,
    )
    kept = entry.path / f"bootstrap-{bootstrap.key_of(plan)}"
    assert first == bootstrap.Bootstrap(stage / "bootstrap", kept, False)
    assert (kept / "usr/share/nc-sbom/a").read_text() == "a\n"
    said: list[str] = []
    second = bootstrap.prepare(
        entry=entry,
        plan=plan,
        rpms=[],
        keys=[key],
        stage=stage,
        work=tmp_path,
        gpgcheck=True,
        on_text=said.append,
    )
    assert second == bootstrap.Bootstrap(stage / "bootstrap", kept, True)
    assert said == [f"the ISO's rpm, checked and unpacked by an earlier build ({kept.name})"]
    # the kept bootstrap's packages need not come off the ISO again
    assert bootstrap.needed_packages(plan, entry, True) == plan.packages
    # ... unless signatures are not checked: then nothing kept is trusted
    assert bootstrap.needed_packages(plan, entry, False) == (*plan.packages, *plan.bootstrap)


def test_unpacking_into_an_existing_directory_works(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    built, _ = signed
    boot = tmp_path / "boot"
    boot.mkdir()
    install.unpack_bootstrap(boot, [built.rpms["nc-plain"]])
    assert (boot / "usr/share/nc-gitops/nc-plain").stat().st_size == 64


def test_a_package_rpm_cannot_unpack_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "rpm-4.14.3-1.x86_64.rpm"
    broken.write_bytes(b"\xed\xab\xee\xdb" + bytes(200))
    with pytest.raises(NestcustomError) as caught:
        install.unpack_bootstrap(tmp_path / "boot", [broken])
    assert caught.value.message.startswith("unpacking the bootstrap (the ISO's rpm) failed: ")
