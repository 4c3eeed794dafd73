"""The universe's two kinds of NewStart DVD: what their packages are made from and carry.

* ``bookworm``: the host's Debian release repackaged: rpm 4.18 writing sqlite,
  dnf 4.14, python 3.11; zstd payloads, RSA/SHA256 signatures. Fast to build,
  and what a newer NewStart (sqlite rpmdb) looks like.
* ``el8``: NewStart V6 as it really is, an EL8 system: Debian bullseye's rpm
  4.16.1.2, built with BerkeleyDB as its default backend (the closest to EL8's
  rpm 4.14.3 that Debian's archive has: same Berkeley DB 5.3 hash/btree
  files under /var/lib/rpm, install times from the clock), dnf 4.5, python
  3.9; and the facts of a real NewStart V6 package header (bash from a public
  NewStart rootfs): dist tag ``.zncgsl6``, Vendor ``ZTE Corporation``, Packager
  ``ZTEOS BuildSystem``, xz payload (EL8's ``w2.xzdio``), header signature
  RSA/SHA1 (an OpenPGP V4 signature). See docs/contracts/nestos-rpm-ostree.md,
  section 5.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    codename: str  # the Debian release the userland comes from ("" = the host's)
    dist: str  # the distribution's release tag, %{?dist} ("": none; the system packages say .ns6)
    payload: str  # rpmbuild's %_binary_payload
    digest: str  # the hash the signatures are made with (gpg --digest-algo)
    vendor: str | None = None
    packager: str | None = None

    def rpm_defines(self) -> dict[str, str]:
        """rpmbuild macros that give the packages this distribution's header facts."""
        defines = {"_binary_payload": self.payload}
        if self.dist:
            defines["dist"] = defines["ns_dist"] = self.dist
        if self.vendor:
            defines["vendor"] = self.vendor
        if self.packager:
            defines["packager"] = self.packager
        return defines


BOOKWORM = Profile(
    name="bookworm",
    codename="",
    dist="",
    payload="w3.zstdio",  # fast, still real compression
    digest="sha256",
)

EL8 = Profile(
    name="el8",
    codename="bullseye",
    dist=".zncgsl6",
    payload="w2.xzdio",  # RHEL 8's redhat-rpm-config
    digest="sha1",
    vendor="ZTE Corporation",
    packager="ZTEOS BuildSystem",
)

PROFILES = {p.name: p for p in (BOOKWORM, EL8)}
