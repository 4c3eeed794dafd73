"""The base image's config, as a user inspecting it sees it: labels, command, health
check and stop signal per variant, from the installed root's os-release and the ISO."""

from __future__ import annotations

from pathlib import Path

from nestcustom.base.image import spec_for
from nestcustom.base.repos import Media, Release
from nestcustom.base.variants import OPTIMIZED, STANDARD

ISO = Path("/isos/NewStart-V6.06-x86_64.dvd.iso")
MEDIA = Media((), (), Release("NewStart CGS Linux", "6.06", "x86_64", 1_700_000_000), "treeinfo")


def root_with(tmp_path: Path, os_release: str | None, init: str | None) -> Path:
    if os_release is not None:
        (tmp_path / "etc").mkdir()
        (tmp_path / "etc" / "os-release").write_text(os_release)
    if init:
        (tmp_path / init).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / init).write_text("")
    return tmp_path


def test_a_standard_image_boots_systemd_and_says_what_it_is(tmp_path: Path) -> None:
    root = root_with(
        tmp_path,
        'NAME="NewStart Linux"\nVERSION_ID="6.06.11"\nVENDOR_NAME=CGS\n# comment\nnot a line\n',
        "usr/lib/systemd/systemd",
    )
    spec = spec_for(ISO, ("@core", "vim"), STANDARD, MEDIA, root, "ab" * 32)
    assert dict(spec.labels) == {
        "org.opencontainers.image.title": "NewStart Linux standard",
        "org.opencontainers.image.version": "6.06.11",
        "org.opencontainers.image.vendor": "CGS",
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.opencontainers.image.description": "NewStart Linux 6.06.11 base image (standard) "
        "built from NewStart-V6.06-x86_64.dvd.iso",
        "io.nestcustom.base.iso": "NewStart-V6.06-x86_64.dvd.iso",
        "io.nestcustom.base.iso.sha256": "ab" * 32,
        "io.nestcustom.base.variant": "standard",
        "io.nestcustom.base.packages": "@core,vim",
    }
    assert (spec.arch, spec.created) == ("x86_64", 1_700_000_000)
    assert spec.cmd == ("/usr/lib/systemd/systemd",)
    assert spec.healthcheck == ("CMD", "systemctl", "is-system-running")
    assert spec.stop_signal == "SIGRTMIN+3"
    assert spec.history == (
        "nestcustom base from-iso NewStart-V6.06-x86_64.dvd.iso --variant standard "
        "--packages @core,vim"
    )


def test_sbin_init_comes_first_and_optimized_images_run_bash(tmp_path: Path) -> None:
    root = root_with(tmp_path, None, "sbin/init")
    (root / "usr/lib/systemd").mkdir(parents=True)
    (root / "usr/lib/systemd/systemd").write_text("")
    assert spec_for(ISO, ("@core",), STANDARD, MEDIA, root, "0").cmd == ("/sbin/init",)
    optimized = spec_for(ISO, ("@core",), OPTIMIZED, MEDIA, root, "0")
    assert (optimized.cmd, optimized.healthcheck, optimized.stop_signal) == (
        ("/bin/bash",), None, None,
    )  # fmt: skip


def test_without_os_release_or_systemd_the_media_names_it(tmp_path: Path) -> None:
    spec = spec_for(ISO, ("@core",), STANDARD, MEDIA, root_with(tmp_path, None, None), "0")
    labels = dict(spec.labels)
    assert labels["org.opencontainers.image.title"] == "NewStart CGS Linux standard"
    assert labels["org.opencontainers.image.version"] == "6.06"
    assert labels["org.opencontainers.image.vendor"] == "NewStart CGS Linux"
    assert (spec.cmd, spec.healthcheck) == (("/bin/bash",), None)  # no systemd to run


def test_usr_lib_os_release_is_read_when_etc_has_none(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text("NAME=Other\nVERSION_ID=9\n")
    labels = dict(spec_for(ISO, ("@core",), STANDARD, MEDIA, tmp_path, "0").labels)
    assert labels["org.opencontainers.image.title"] == "Other standard"
    assert labels["org.opencontainers.image.version"] == "9"


def test_the_architecture_is_the_isos_and_x86_64_when_it_says_none(tmp_path: Path) -> None:
    def arch_of(arch: str) -> str:
        media = Media((), (), Release("N", "1", arch, 0), "treeinfo")
        return spec_for(ISO, ("@core",), OPTIMIZED, media, tmp_path, "0").arch

    assert (arch_of("aarch64"), arch_of("")) == ("aarch64", "x86_64")
