"""The host's check of the bootstrap's packages against the ISO's keys, with real rpmkeys:
packages signed by a gpg key made here, one unsigned, one missing from the ISO."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestcustom.base import sigcheck
from nestcustom.errors import BadInputError
from tests.gitops.test_rpmdb_fast import BuiltDb, build_db


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltDb, Path]:
    """(the packages, the public key that signed nc-sbom and libnc-sbom)."""
    work = tmp_path_factory.mktemp("signed")
    return build_db(work), work / "key.asc"


def test_packages_signed_by_the_isos_key_pass(signed: tuple[BuiltDb, Path], tmp_path: Path) -> None:
    built, key = signed
    rpms = [built.rpms["nc-sbom"], built.rpms["libnc-sbom"]]
    sigcheck.check_bootstrap(rpms, [key], tmp_path)  # no refusal
    assert (tmp_path / "host-keyring").is_dir()  # the key went into a keyring of its own


def test_an_unsigned_package_is_refused_by_name_with_rpmkeys_verdict(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    built, key = signed
    rpms = [built.rpms["nc-sbom"], built.rpms["nc-plain"]]
    with pytest.raises(BadInputError) as caught:
        sigcheck.check_bootstrap(rpms, [key], tmp_path)
    message = caught.value.message
    assert message.startswith("1 package(s) of the ISO's rpm")
    assert "nc-plain-3.0-7.noarch.rpm: digests OK" in message
    assert "nc-sbom" not in message
    assert "--no-gpgcheck" in str(caught.value.hint)


def test_a_package_rpmkeys_cannot_read_is_refused_as_not_checked(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    """A bootstrap package missing from a damaged ISO gets no verdict line from rpmkeys:
    it is refused with what rpmkeys said on stderr, never let through."""
    built, key = signed
    missing = tmp_path / "rpm-libs-4.14.3-1.x86_64.rpm"
    with pytest.raises(BadInputError) as caught:
        sigcheck.check_bootstrap([built.rpms["nc-sbom"], missing], [key], tmp_path)
    message = caught.value.message
    assert "rpm-libs-4.14.3-1.x86_64.rpm: not checked: " in message
    assert "No such file or directory" in message


def test_a_key_the_host_cannot_import_is_a_located_error(
    signed: tuple[BuiltDb, Path], tmp_path: Path
) -> None:
    built, _ = signed
    bad_key = tmp_path / "RPM-GPG-KEY-broken"
    bad_key.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n")
    with pytest.raises(BadInputError, match="signing keys cannot be imported"):
        sigcheck.check_bootstrap([built.rpms["nc-sbom"]], [bad_key], tmp_path)


def test_a_sha1_complaint_of_the_host_rpm_gets_the_sha1_hint() -> None:
    """rpm >= 4.19 (or a crypto policy) refuses EL8's RSA/SHA1 signatures: the hint must
    say it is the host, not the ISO, at fault."""
    refusal = sigcheck._refusal(
        ["rpm-4.14.3.rpm: digests SIGNATURES NOT OK"],
        "error: Verifying a signature using certificate ...: SHA1 is not considered secure\n",
    )
    assert "refuses SHA1 signatures" in str(refusal.hint)
    other = sigcheck._refusal(["rpm-4.14.3.rpm: digests OK"], "")
    assert "damaged or not the vendor's" in str(other.hint)


def test_more_than_ten_refusals_are_counted_not_listed() -> None:
    bad = [f"p{n}.rpm: digests OK" for n in range(13)]
    message = sigcheck._refusal(bad, "").message
    assert message.startswith("13 package(s)")
    assert "p9.rpm" in message and "p10.rpm" not in message
    assert message.endswith("... 3 more")
