"""NewStart V6 as it really is: an EL8 DVD whose rpm writes BerkeleyDB under /var/lib/rpm.

The universe's EL8-like DVD (tests/universe/iso, profile el8: Debian bullseye's
rpm 4.16.1.2 with BerkeleyDB, dnf 4.5, packages with a real NewStart V6
header's facts, RSA/SHA1 signatures) goes through both variants: the image's
own rpm reads its BerkeleyDB database, `rpm -Va` is clean, install times come
from the ISO's date, two builds on two file systems give one digest, and
`diff` reads two such images from the registry.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.base.conftest import BASE_CACHE, ROOT, Built, nestcustom, podman
from tests.base.test_from_iso_universe import image_rpm_qa, names_of, run_in
from tests.universe.iso.build import Iso
from tests.universe.iso.metadata import TIMESTAMP
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe

HASH_MAGIC = 0x061561  # a Berkeley DB hash database's metadata page (db_page.h)


def unepoch(evr: str) -> str:
    """VERSION-RELEASE of [EPOCH:]VERSION-RELEASE (the ISO's file names carry no epoch)."""
    return evr.split(":", 1)[-1]


def query_iso_package(iso: Iso, name: str, fmt: str) -> str:
    """rpm -qp on one package of the ISO, read straight from its tree."""
    from tests.universe.iso.mirror import extracted_tree

    (path,) = extracted_tree(iso).rglob(f"{iso.packages[name]}.rpm")
    done = subprocess.run(
        ["rpm", "-qp", "--nosignature", "--qf", fmt, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_the_dvd_carries_the_facts_of_a_real_newstart_v6_package(iso_el8: Iso) -> None:
    facts = query_iso_package(
        iso_el8, "bash", "%{RELEASE}|%{VENDOR}|%{PACKAGER}|%{PAYLOADCOMPRESSOR}|%{RSAHEADER:pgpsig}"
    ).split("|")
    release, vendor, packager, payload, signature = facts
    assert release.endswith(".zncgsl6")
    assert (vendor, packager, payload) == ("ZTE Corporation", "ZTEOS BuildSystem", "xz")
    assert signature.startswith("RSA/SHA1, ")
    from tests.universe.iso.mirror import extracted_tree

    (path,) = extracted_tree(iso_el8).rglob(f"{iso_el8.packages['bash']}.rpm")
    verbose = subprocess.run(["rpm", "-Kv", str(path)], capture_output=True, text=True).stdout
    assert "Header V4 RSA/SHA1 Signature" in verbose


@pytest.mark.parametrize("variant", ["standard", "optimized"])
def test_the_images_rpm_reads_its_berkeley_db(
    variant: str, el8_standard: Built, el8_optimized: Built
) -> None:
    built = el8_standard if variant == "standard" else el8_optimized
    assert image_rpm_qa(built.tag) == sorted(built.report["packages"])
    assert built.report["rpmdb"]["path"] == "/var/lib/rpm"
    assert built.report["rpmdb"]["backend"] == "bdb"
    assert built.report["rpmdb"]["rpm"] == "RPM version 4.16.1.2"
    assert built.report["warnings"] == []
    out = run_in(
        built.tag,
        "rpm --eval '%_db_backend %_dbpath'; ls -A /var/lib/rpm; "
        "od -A n -t x4 -j 12 -N 4 /var/lib/rpm/Packages",
    ).split()
    assert out[:2] == ["bdb", "/var/lib/rpm"]
    files, magic = out[2:-1], int(out[-1], 16)
    assert "Packages" in files and "Name" in files and "Basenames" in files
    assert not [f for f in files if f.startswith(("__db.", ".", "rpmdb.sqlite"))], files
    assert magic == HASH_MAGIC


@pytest.mark.parametrize("variant", ["standard", "optimized"])
def test_rpm_verify_is_clean_and_install_times_come_from_the_iso(
    variant: str, el8_standard: Built, el8_optimized: Built
) -> None:
    built = el8_standard if variant == "standard" else el8_optimized
    done = podman("run", "--rm", "--network=none", "--entrypoint", "rpm", built.tag, "-Va")
    problems = [
        line for line in done.stdout.splitlines() if line.strip() and line.split()[1:2] != ["c"]
    ]
    assert problems == [], "\n".join(problems[:20])
    times = run_in(built.tag, "rpm -qa --qf '%{INSTALLTID} %{INSTALLTIME}\\n'").split("\n")
    pairs = [tuple(map(int, line.split())) for line in times if line]
    assert {tid for tid, _ in pairs} == {TIMESTAMP}
    # one second per package, counted from the ISO's date, as rpm >= 4.18 does it
    assert sorted(when for _, when in pairs) == list(range(TIMESTAMP, TIMESTAMP + len(pairs)))


def test_standard_and_optimized_differ_as_their_variants_say(
    el8_standard: Built, el8_optimized: Built
) -> None:
    standard, optimized = (names_of(b.report["packages"]) for b in (el8_standard, el8_optimized))
    assert {"bash", "rpm", "dnf", "systemd", "less", "nc-owned"} <= optimized
    assert optimized < standard  # no weak dependencies in optimized
    out = run_in(el8_optimized.tag, "find /usr/share/doc /usr/share/man -type f | head -3")
    assert out == ""
    assert el8_optimized.report["image_size"] < 0.8 * el8_standard.report["image_size"]


def test_two_builds_on_two_file_systems_by_two_users_give_one_digest(
    el8_standard: Built, iso_el8: Iso, built_images: list[str], registry: Registry, tmp_path: Path
) -> None:
    """The first build was staged in memory (tmpfs); this one on disk, under another
    umask, HOME and user name: BerkeleyDB's pages, the tar and the config are the same."""
    workdir = Path("/var/tmp") / f"nctest-el8-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    tag = f"localhost/nctest-base/{uuid.uuid4().hex[:10]}:latest"
    built_images.append(tag)
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "USER": "builder2",
        "LOGNAME": "builder2",
        "NESTCUSTOM_CACHE_DIR": str(BASE_CACHE),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "nestcustom", "base", "from-iso", str(iso_el8.path),
             "--variant", "standard", "--workdir", str(workdir), "--tag", tag, "--json"],
            cwd=ROOT, capture_output=True, text=True, env=env, check=False,
            preexec_fn=lambda: os.umask(0o077),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        filesystem = subprocess.run(
            ["stat", "-f", "-c", "%T", str(workdir)], capture_output=True, text=True, check=True
        ).stdout.strip()
    finally:
        workdir.rmdir()
    assert filesystem != "tmpfs"
    again = json.loads(done.stdout)
    assert again["image_id"] == el8_standard.report["image_id"]
    digests = []
    for index, local in enumerate((el8_standard.tag, tag)):
        remote = f"{registry.host}/newstart/el8-repro{index}:latest"
        assert podman("tag", local, remote).returncode == 0
        built_images.append(remote)
        pushed = podman("push", "--tls-verify=false", "--digestfile", "/dev/stdout", remote)
        assert pushed.returncode == 0, pushed.stderr
        digests.append(pushed.stdout.strip())
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")


def test_diff_reads_two_el8_images_from_the_registry(
    el8_standard: Built, el8_optimized: Built, iso_el8: Iso, registry: Registry,
    built_images: list[str],
) -> None:  # fmt: skip
    refs = []
    for built, name in ((el8_standard, "standard"), (el8_optimized, "optimized")):
        remote = f"{registry.host}/newstart/el8-{name}:diff"
        assert podman("tag", built.tag, remote).returncode == 0
        assert podman("push", "--tls-verify=false", remote).returncode == 0
        built_images.append(remote)
        refs.append(f"docker://{remote}")
    done = nestcustom("diff", *refs, "--no-tls-verify", "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    removed = {c["name"]: c for c in document["changes"] if c["kind"] == "removed"}
    only_standard = names_of(el8_standard.report["packages"]) - names_of(
        el8_optimized.report["packages"]
    )
    assert set(removed) == only_standard
    assert [c for c in document["changes"] if c["kind"] != "removed"] == []
    for name, change in removed.items():  # versions as the ISO has them
        assert iso_el8.packages[name].startswith(f"{name}-{unepoch(change['old'])}."), change
    assert document["a"]["packages"] == len(el8_standard.report["packages"])
    assert document["b"]["packages"] == len(el8_optimized.report["packages"])


def test_a_recipe_on_the_el8_base_installs_with_its_dnf_and_passes_its_tests(
    el8_standard: Built, iso_el8: Iso, registry: Registry, built_images: list[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    from tests.base.test_recipe_on_base_universe import build_and_test_example

    tag, base = build_and_test_example(el8_standard, iso_el8, registry, built_images, tmp_path)
    listed = podman("run", "--rm", "--entrypoint", "rpm", tag, "-q", "strace", "jq", "less")
    assert iso_el8.packages["strace"].removesuffix(".x86_64") in listed.stdout
    assert "package less is not installed" in listed.stdout
    # dnf wrote the recipe's packages into the base's BerkeleyDB database, which
    # `diff` reads from the registry: only the database's layers are downloaded.
    done = nestcustom("diff", f"docker://{base}", f"docker://{tag}", "--no-tls-verify",
                      "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    kinds = {(c["kind"], c["name"]) for c in document["changes"]}
    # dnf imported the repositories' key into the database: rpm lists it as gpg-pubkey
    assert {
        ("added", "strace"),
        ("added", "jq"),
        ("added", "gpg-pubkey"),
        ("removed", "less"),
    } <= kinds
    assert {kind for kind, _ in kinds} == {"added", "removed"}
    for change in document["changes"]:
        version = unepoch(change["new"] if change["kind"] == "added" else change["old"])
        if change["name"] == "gpg-pubkey":  # VERSION-RELEASE: the key's id and date, in hex
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{8}", version), version
        else:
            assert iso_el8.packages[change["name"]].startswith(f"{change['name']}-{version}.")
    image = document["b"]
    assert image["layers_read"] < len(image["layers"])
    assert 0 < image["downloaded"] < sum(layer["size"] for layer in image["layers"])
