"""The two kinds of base image, as data: what each installs and how.

standard: the full resolved set, with weak dependencies, docs, man pages and
every locale the packages carry.

optimized: no weak dependencies; docs, man and info pages, debug info and
locales other than C and English are left out *at install time* (rpm's
%_excludedocs, %_install_langs and an excluded path), so rpm records them as
not installed and `rpm -Va` stays clean; the same macros are written into the
image's /etc/rpm so later installs in recipes stay slim too. Where the
distribution has minimal langpacks, the English one is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGS = "C:en:en_US:en_US.UTF-8"


@dataclass(frozen=True)
class Variant:
    name: str
    weak_deps: bool
    install_macros: tuple[tuple[str, str], ...]  # rpm --define at install time
    rpm_options: tuple[str, ...]
    optional: tuple[str, ...]  # installed when the distribution has them
    image_macros: tuple[tuple[str, str], ...]  # /etc/rpm/macros.* files written into the image
    slim: bool  # report what was left out


STANDARD = Variant(
    name="standard",
    weak_deps=True,
    install_macros=(),
    rpm_options=(),
    optional=(),
    image_macros=(),
    slim=False,
)

OPTIMIZED = Variant(
    name="optimized",
    weak_deps=False,
    install_macros=(("_excludedocs", "1"), ("_install_langs", LANGS)),
    rpm_options=("--excludepath", "/usr/lib/debug", "--excludepath", "/usr/src/debug"),
    optional=("glibc-langpack-en", "glibc-minimal-langpack"),
    image_macros=(
        ("macros.image-language-conf", f"%_install_langs {LANGS}\n"),
        ("macros.image-nodocs", "%_excludedocs 1\n"),
    ),
    slim=True,
)

VARIANTS = {v.name: v for v in (STANDARD, OPTIMIZED)}
