"""nestcustom base from-iso on the universe's DVD ISOs: real RPMs, real rpm, real podman.

What a user would check: the image runs; its own rpm lists exactly the packages
the build reports; standard keeps docs and boots systemd to a healthy state;
optimized has no docs, man or info pages, caches or foreign locales; owners,
modes, setuid bits and capabilities survive; two builds give the same digest;
modular AppStream and both DVD layouts work.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.base.conftest import Built, from_iso, podman
from tests.universe.iso.build import Iso
from tests.universe.registry import Registry

pytestmark = pytest.mark.universe

NEVRA = "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n"


def run_in(image: str, script: str) -> str:
    done = podman("run", "--rm", "--network=none", "--entrypoint", "/bin/sh", image, "-c", script)
    assert done.returncode == 0, done.stderr
    return done.stdout


def image_rpm_qa(image: str) -> list[str]:
    """The packages the image's own rpm lists."""
    done = podman(
        "run", "--rm", "--network=none", "--entrypoint", "rpm", image, "-qa", "--qf", NEVRA
    )
    assert done.returncode == 0, done.stderr
    return sorted(done.stdout.split())


def names_of(packages: list[str]) -> set[str]:
    """NAME of each NAME-EPOCH:VERSION-RELEASE.ARCH."""
    return {p.split(":", 1)[0].rsplit("-", 1)[0] for p in packages}


def inspect(image: str) -> dict[str, object]:
    done = podman("image", "inspect", image)
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)[0]
    return data


# -- standard -------------------------------------------------------------------------


def test_standard_rpmdb_lists_exactly_the_resolved_set(standard_core: Built) -> None:
    reported = standard_core.report["packages"]
    assert image_rpm_qa(standard_core.tag) == sorted(reported)
    names = names_of(reported)
    # @core's mandatory and default packages, and weak dependencies (dbus is only recommended)
    assert {"filesystem", "setup", "bash", "rpm", "dnf", "systemd", "less", "nc-owned"} <= names
    assert "dbus" in names
    assert "strace" not in names  # optional in @core
    assert standard_core.report["rpmdb"]["path"] == "/var/lib/rpm"
    assert run_in(standard_core.tag, "ls /var/lib/rpm").split() == ["rpmdb.sqlite"]


def test_standard_config_labels_and_healthcheck(standard_core: Built, iso_treeinfo: Iso) -> None:
    data = inspect(standard_core.tag)
    config = data["Config"]
    assert isinstance(config, dict)
    assert config["Cmd"] == ["/lib/systemd/systemd"]
    assert config["StopSignal"] == "SIGRTMIN+3"
    health = data["Healthcheck"]
    assert isinstance(health, dict)
    assert health["Test"] == ["CMD", "systemctl", "is-system-running"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "NewStart CGS Linux standard"
    assert labels["org.opencontainers.image.version"] == "6.06"
    assert labels["org.opencontainers.image.vendor"] == "NewStart CGS Linux"
    assert labels["org.opencontainers.image.created"] == "2023-11-10T12:00:00Z"
    assert labels["io.nestcustom.base.iso"] == iso_treeinfo.path.name
    digest = hashlib.sha256(iso_treeinfo.path.read_bytes()).hexdigest()
    assert labels["io.nestcustom.base.iso.sha256"] == digest
    assert len(data["RootFS"]["Layers"]) == 1  # type: ignore[index]
    assert str(data["Created"]).startswith("2023-11-10T12:00:00")


def test_standard_keeps_owners_modes_setuid_capabilities_and_docs(standard_core: Built) -> None:
    out = run_in(
        standard_core.tag,
        "stat -c '%U:%G %a %n' /var/lib/nc-owned /var/lib/nc-owned/state "
        "/usr/libexec/nc-owned/suid-helper /usr/bin/passwd /tmp; "
        "getcap /usr/libexec/nc-owned/cap-helper; "
        "test -s /usr/share/doc/bash/copyright && echo docs; "
        "ls /usr/share/man/man1/bash.1.gz; ls /usr/share/locale/de/LC_MESSAGES/ | head -3",
    ).splitlines()
    assert out[0] == "ncdata:ncdata 750 /var/lib/nc-owned"
    assert out[1] == "ncdata:ncdata 640 /var/lib/nc-owned/state"
    assert out[2] == "root:root 4755 /usr/libexec/nc-owned/suid-helper"
    assert out[3] == "root:root 4755 /usr/bin/passwd"
    assert out[4] == "root:root 1777 /tmp"
    assert out[5] == "/usr/libexec/nc-owned/cap-helper cap_net_raw=ep"
    assert out[6] == "docs"
    assert out[7] == "/usr/share/man/man1/bash.1.gz"
    assert out[8:], "German translations are kept in the standard image"


def test_standard_rpm_verify_is_clean(standard_core: Built) -> None:
    done = podman("run", "--rm", "--network=none", "--entrypoint", "rpm", standard_core.tag, "-Va")
    problems = [
        line
        for line in done.stdout.splitlines()
        # config files that scriptlets edit (useradd) and the files podman mounts are expected
        if line.split()[1:2] != ["c"] and line.strip()
    ]
    assert problems == [], "\n".join(problems[:20])


def test_standard_boots_systemd_and_turns_healthy(standard_core: Built) -> None:
    started = podman("run", "-d", "--network=none", standard_core.tag)
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        deadline = time.monotonic() + 90
        state = ""
        while time.monotonic() < deadline:
            state = podman("exec", container, "systemctl", "is-system-running").stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(1)
        assert state == "running", podman("exec", container, "systemctl", "--failed").stdout
        assert podman("healthcheck", "run", container).returncode == 0
    finally:
        podman("rm", "-f", "-t", "0", container)


# -- optimized ------------------------------------------------------------------------


def test_optimized_leaves_out_docs_man_info_caches_and_foreign_locales(
    optimized_core: Built, standard_core: Built
) -> None:
    out = run_in(
        optimized_core.tag,
        "find /usr/share/doc /usr/share/man /usr/share/info /var/cache -type f | head -5; "
        "echo ---; ls /usr/share/locale; echo ---; cat /etc/rpm/macros.image-language-conf "
        "/etc/rpm/macros.image-nodocs",
    )
    files, locales, macros = out.split("---\n")
    assert files == ""
    assert all(name.startswith("en") or "." in name for name in locales.split()), locales
    assert "%_install_langs C:en:en_US:en_US.UTF-8" in macros
    assert "%_excludedocs 1" in macros
    left = optimized_core.report["left_out"]
    assert left["docs"]["bytes"] > 1_000_000 and left["locales"]["bytes"] > 1_000_000
    assert left["man/info"]["files"] > 100
    assert optimized_core.report["image_size"] < standard_core.report["image_size"]
    # no weak dependencies: dbus is only recommended
    names = names_of(optimized_core.report["packages"])
    assert "dbus" not in names
    assert image_rpm_qa(optimized_core.tag) == sorted(optimized_core.report["packages"])
    assert inspect(optimized_core.tag).get("Healthcheck") is None


def test_optimized_rpm_verify_is_clean_and_later_installs_stay_slim(optimized_core: Built) -> None:
    done = podman("run", "--rm", "--network=none", "--entrypoint", "rpm", optimized_core.tag, "-Va")
    missing = [line for line in done.stdout.splitlines() if line.startswith("missing")]
    assert missing == []
    assert run_in(optimized_core.tag, "rpm --eval '%_excludedocs %_install_langs'").split() == [
        "1",
        "C:en:en_US:en_US.UTF-8",
    ]


# -- reproducible ---------------------------------------------------------------------


def test_two_builds_give_the_same_digest(
    standard_core: Built, iso_treeinfo: Iso, built_images: list[str], registry: Registry
) -> None:
    again = from_iso(iso_treeinfo.path, "--variant", "standard")
    built_images.append(again.tag)
    assert again.report["image_id"] == standard_core.report["image_id"]
    digests = []
    for index, local in enumerate((standard_core.tag, again.tag)):
        remote = f"{registry.host}/newstart/repro{index}:latest"
        assert podman("tag", local, remote).returncode == 0
        built_images.append(remote)
        pushed = podman("push", "--tls-verify=false", "--digestfile", "/dev/stdout", remote)
        assert pushed.returncode == 0, pushed.stderr
        digests.append(pushed.stdout.strip())
    assert digests[0] == digests[1]
    assert digests[0].startswith("sha256:")


def test_push_prints_the_pinned_reference(
    iso_treeinfo: Iso, built_images: list[str], registry: Registry
) -> None:
    tag = f"{registry.host}/newstart/small:v1"
    built = from_iso(
        iso_treeinfo.path, "--packages", "bash,rpm", "--push", "--no-tls-verify", tag=tag
    )
    built_images.append(tag)
    pinned = built.report["pinned"]
    assert pinned == f"{registry.host}/newstart/small@{built.report['digest']}"
    assert podman("pull", "--tls-verify=false", pinned).returncode == 0


# -- layouts, database paths, modules -------------------------------------------------


def test_flat_layout_and_a_sysimage_rpmdb(iso_flat_sysimage: Iso, built_images: list[str]) -> None:
    built = from_iso(iso_flat_sysimage.path, "--packages", "bash,coreutils,rpm,nc-owned")
    built_images.append(built.tag)
    assert built.report["rpmdb"]["path"] == "/usr/lib/sysimage/rpm"
    assert image_rpm_qa(built.tag) == sorted(built.report["packages"])
    listing = run_in(
        built.tag, "ls /usr/lib/sysimage/rpm; echo ---; ls -A /var/lib/rpm 2>&1 || true"
    )
    sysimage, var = listing.split("---\n")
    assert sysimage.split() == ["rpmdb.sqlite"]
    assert "rpmdb" not in var and "Packages" not in var


def test_modular_appstream_uses_the_default_stream(
    iso_treeinfo: Iso, built_images: list[str]
) -> None:
    # nc-hello 2.0 is on the ISO too, in the module's non-default stream 2
    assert iso_treeinfo.modular["nc-hello"].startswith("nc-hello-1.0")
    default = from_iso(iso_treeinfo.path, "--packages", "nc-hello", "--variant", "optimized")
    built_images.append(default.tag)
    assert any(p.startswith("nc-hello-0:1.0-") for p in default.report["packages"])
    chosen = from_iso(iso_treeinfo.path, "--packages", "@nc-hello:2", "--variant", "optimized")
    built_images.append(chosen.tag)
    assert any(p.startswith("nc-hello-0:2.0-") for p in chosen.report["packages"])


def test_report_names_phases_and_sizes(standard_core: Built) -> None:
    for phase in ("check", "read", "resolve", "extract", "bootstrap", "install", "tar", "image"):
        assert f"\n{phase:9} " in "\n" + standard_core.stderr, phase
    assert "packages   " in standard_core.stderr
    assert Path(standard_core.report["iso"]["name"]).suffix == ".iso"
