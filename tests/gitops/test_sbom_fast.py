"""SBOMs as a consumer reads them, fast: SPDX 2.3 and CycloneDX 1.6 documents of a real
rpmdb (made by tests/gitops/test_rpmdb_fast.py's build_db: signed and unsigned RPMs, an
epoch, a vendor), checked by the formats' own validators, field by field."""

from __future__ import annotations

import copy
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from nestcustom import __version__
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.gitops.imagedb import ImageDb
from nestcustom.gitops.sbom import (
    EPOCH_TIME,
    RpmPackage,
    Subject,
    read_rpm_packages,
    sbom_of,
    validate,
)
from tests.gitops.test_rpmdb_fast import BuiltDb, build_db

IMAGE_ID = "c" * 64
DIGEST = "sha256:" + "d" * 64
LABELS = {
    "org.opencontainers.image.created": "2026-11-30T10:00:00Z",
    "org.opencontainers.image.base.name": "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2",
    "org.opencontainers.image.base.digest": "sha256:" + "b" * 64,
    "io.nestcustom.recipe": "recipes/web.yaml",
    "org.opencontainers.image.revision": "0123456789abcdef",
    "org.opencontainers.image.source": "",  # empty: left out of the provenance
    "unrelated": "not provenance",
}
SUBJECT = Subject("registry.example.com/nestos/web:1", None, IMAGE_ID, LABELS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltDb:
    return build_db(tmp_path_factory.mktemp("sbom-rpmdb"))


@pytest.fixture(scope="module")
def packages(built: BuiltDb) -> tuple[RpmPackage, ...]:
    return read_rpm_packages(ImageDb("img", "local", built.found, (), 1, 0))


def payload(rpm: Path) -> str:
    """The payload digest rpm recorded in the package file itself."""
    return subprocess.run(
        ["rpm", "-qp", "--qf", "%{PAYLOADDIGEST}", str(rpm)], capture_output=True, text=True
    ).stdout


def test_the_packages_an_sbom_states(built: BuiltDb, packages: tuple[RpmPackage, ...]) -> None:
    source = "nc-sbom-1.5-3.src.rpm"
    assert packages == (  # the imported key (gpg-pubkey) is no software: left out
        RpmPackage("libnc-sbom", "noarch", 0, "0.9", "1", "BSD-3-Clause", source,
                   "Nestcustom Test Vendor", built.key_id, payload(built.rpms["libnc-sbom"])),
        RpmPackage("nc-plain", "noarch", 0, "3.0", "7", "MIT", "nc-gitops-set-1-1.src.rpm",
                   None, None, payload(built.rpms["nc-plain"])),
        RpmPackage("nc-sbom", "noarch", 2, "1.5", "3", "GPL-2.0-or-later AND MIT", source,
                   "Nestcustom Test Vendor", built.key_id, payload(built.rpms["nc-sbom"])),
    )  # fmt: skip
    assert all(len(p.payload_sha256 or "") == 64 for p in packages)
    assert [(p.evr, p.purl) for p in packages] == [
        ("0.9-1", "pkg:rpm/libnc-sbom@0.9-1?arch=noarch"),
        ("3.0-7", "pkg:rpm/nc-plain@3.0-7?arch=noarch"),
        ("2:1.5-3", "pkg:rpm/nc-sbom@1.5-3?arch=noarch&epoch=2"),
    ]


def test_an_image_without_rpm_database_has_no_sbom() -> None:
    with pytest.raises(BadInputError) as raised:
        read_rpm_packages(ImageDb("localhost/scratch:1", "local", None, (), 3, 0))
    assert raised.value.message == (
        "localhost/scratch:1: the image has no RPM database "
        "(looked in usr/share/rpm, usr/lib/sysimage/rpm, var/lib/rpm)"
    )


def spdx_package(document: dict[str, Any], spdx_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in document["packages"] if p["SPDXID"] == spdx_id)
    return found


def test_spdx_document(built: BuiltDb, packages: tuple[RpmPackage, ...]) -> None:
    sbom = sbom_of((SUBJECT, packages), "spdx", name="registry.example.com/nestos/web@" + DIGEST,
                   digest=DIGEST)  # fmt: skip
    document = sbom.document
    assert (sbom.format, sbom.packages) == ("spdx", 3)
    assert sbom.subject == Subject("registry.example.com/nestos/web@" + DIGEST, DIGEST, IMAGE_ID,
                                   LABELS)  # fmt: skip
    assert {k: v for k, v in document.items() if k not in ("packages", "relationships")} == {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"registry.example.com/nestos/web@{DIGEST} RPM packages",
        "documentNamespace": "https://nestcustom.invalid/spdx/sha256-" + "d" * 64,
        "creationInfo": {
            "created": "2026-11-30T10:00:00Z",
            "creators": [f"Tool: nestcustom-{__version__}"],
        },
    }
    assert [p["SPDXID"] for p in document["packages"]] == [
        "SPDXRef-Image", "SPDXRef-Base", "SPDXRef-RPM-libnc-sbom-0.9-1.noarch",
        "SPDXRef-RPM-nc-plain-3.0-7.noarch", "SPDXRef-RPM-nc-sbom-2-1.5-3.noarch",
    ]  # fmt: skip
    assert spdx_package(document, "SPDXRef-Image") == {
        "SPDXID": "SPDXRef-Image",
        "name": f"registry.example.com/nestos/web@{DIGEST}",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": "d" * 64}],
        "comment": "org.opencontainers.image.base.name=hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2; "
        f"org.opencontainers.image.base.digest=sha256:{'b' * 64}; "
        "io.nestcustom.recipe=recipes/web.yaml; "
        "org.opencontainers.image.revision=0123456789abcdef",
    }
    assert spdx_package(document, "SPDXRef-Base") == {
        "SPDXID": "SPDXRef-Base",
        "name": "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
    }
    assert spdx_package(document, "SPDXRef-RPM-nc-sbom-2-1.5-3.noarch") == {
        "SPDXID": "SPDXRef-RPM-nc-sbom-2-1.5-3.noarch",
        "name": "nc-sbom",
        "versionInfo": "2:1.5-3",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": "pkg:rpm/nc-sbom@1.5-3?arch=noarch&epoch=2",
            }
        ],
        "comment": "arch=noarch; license=GPL-2.0-or-later AND MIT; "
        f"signature-key-id={built.key_id}",
        "supplier": "Organization: Nestcustom Test Vendor",
        "sourceInfo": "built from nc-sbom-1.5-3.src.rpm",
        "checksums": [{"algorithm": "SHA256", "checksumValue": payload(built.rpms["nc-sbom"])}],
    }
    plain = spdx_package(document, "SPDXRef-RPM-nc-plain-3.0-7.noarch")
    assert "supplier" not in plain
    assert plain["comment"] == "arch=noarch; license=MIT; signature-key-id=unsigned"
    assert document["relationships"] == [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
         "relatedSpdxElement": "SPDXRef-Image"},
        {"spdxElementId": "SPDXRef-Image", "relationshipType": "DESCENDANT_OF",
         "relatedSpdxElement": "SPDXRef-Base"},
        *({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS",
           "relatedSpdxElement": i} for i in ("SPDXRef-RPM-libnc-sbom-0.9-1.noarch",
           "SPDXRef-RPM-nc-plain-3.0-7.noarch", "SPDXRef-RPM-nc-sbom-2-1.5-3.noarch")),
    ]  # fmt: skip
    # the same image gives the same document
    again = sbom_of((SUBJECT, packages), "spdx", name=sbom.subject.reference, digest=DIGEST)
    assert again.document == document


def test_an_image_known_by_id_only_without_labels(packages: tuple[RpmPackage, ...]) -> None:
    """No digest: the image ID identifies it; no labels: no base, no provenance, epoch time."""
    bare = Subject("localhost/web:1", None, IMAGE_ID, {"org.opencontainers.image.created": "x"})
    spdx = sbom_of((bare, packages), "spdx").document
    assert spdx["documentNamespace"] == "https://nestcustom.invalid/spdx/sha256-" + "c" * 64
    assert spdx["creationInfo"]["created"] == EPOCH_TIME
    assert spdx_package(spdx, "SPDXRef-Image")["comment"] == "no provenance labels"
    assert spdx_package(spdx, "SPDXRef-Image")["checksums"][0]["checksumValue"] == IMAGE_ID
    assert [r["relationshipType"] for r in spdx["relationships"]] == ["DESCRIBES"] + 3 * [
        "CONTAINS"
    ]
    cdx = sbom_of((bare, packages), "cyclonedx").document
    assert (
        cdx["serialNumber"]
        == f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'nestcustom:sha256:' + IMAGE_ID)}"
    )
    assert cdx["metadata"]["timestamp"] == EPOCH_TIME
    assert cdx["metadata"]["component"]["properties"] == []


def test_cyclonedx_document(built: BuiltDb, packages: tuple[RpmPackage, ...]) -> None:
    subject = Subject("registry.example.com/nestos/web:1", DIGEST, IMAGE_ID, LABELS)
    sbom = sbom_of((subject, packages), "cyclonedx")
    document = sbom.document
    assert (sbom.format, sbom.packages) == ("cyclonedx", 3)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert document["version"] == 1
    assert document["serialNumber"] == "urn:uuid:" + str(
        uuid.uuid5(uuid.NAMESPACE_URL, "nestcustom:" + DIGEST)
    )
    assert document["metadata"] == {
        "timestamp": "2026-11-30T10:00:00Z",
        "tools": {"components": [{"type": "application", "name": "nestcustom",
                                  "version": __version__}]},
        "component": {
            "type": "container",
            "bom-ref": "image",
            "name": "registry.example.com/nestos/web:1",
            "hashes": [{"alg": "SHA-256", "content": "d" * 64}],
            "properties": [
                {"name": "nestcustom:org.opencontainers.image.base.name",
                 "value": "hub.oepkgs.net/nestos/nestos:22.03-LTS-SP2"},
                {"name": "nestcustom:org.opencontainers.image.base.digest",
                 "value": "sha256:" + "b" * 64},
                {"name": "nestcustom:io.nestcustom.recipe", "value": "recipes/web.yaml"},
                {"name": "nestcustom:org.opencontainers.image.revision",
                 "value": "0123456789abcdef"},
            ],
        },
    }  # fmt: skip
    library, plain, main = document["components"]
    assert main == {
        "type": "application",
        "bom-ref": "pkg:rpm/nc-sbom@1.5-3?arch=noarch&epoch=2",
        "name": "nc-sbom",
        "version": "2:1.5-3",
        "purl": "pkg:rpm/nc-sbom@1.5-3?arch=noarch&epoch=2",
        "properties": [
            {"name": "rpm:epoch", "value": "2"},
            {"name": "rpm:release", "value": "3"},
            {"name": "rpm:arch", "value": "noarch"},
            {"name": "rpm:sourcerpm", "value": "nc-sbom-1.5-3.src.rpm"},
            {"name": "rpm:signature-key-id", "value": built.key_id},
        ],
        "licenses": [{"license": {"name": "GPL-2.0-or-later AND MIT"}}],
        "supplier": {"name": "Nestcustom Test Vendor"},
        "hashes": [{"alg": "SHA-256", "content": payload(built.rpms["nc-sbom"])}],
    }
    assert (library["type"], library["bom-ref"]) == (
        "library",
        "pkg:rpm/libnc-sbom@0.9-1?arch=noarch",
    )
    assert "supplier" not in plain
    assert plain["properties"][-1] == {"name": "rpm:signature-key-id", "value": "unsigned"}
    assert document["dependencies"] == [
        {"ref": "image", "dependsOn": [library["bom-ref"], plain["bom-ref"], main["bom-ref"]]}
    ]
    assert sbom_of((subject, packages), "cyclonedx").document == document


def refusal(fmt: str, document: dict[str, Any]) -> str:
    with pytest.raises(NestcustomError) as raised:
        validate(fmt, document)
    assert raised.value.hint == "please report it"
    return raised.value.message


def test_a_broken_document_is_refused_with_what_is_wrong(
    packages: tuple[RpmPackage, ...],
) -> None:
    spdx = sbom_of((SUBJECT, packages), "spdx").document
    unparsable = copy.deepcopy(spdx)
    del unparsable["SPDXID"]
    assert refusal("spdx", unparsable).startswith(
        "the SPDX SBOM does not parse: Error while constructing CreationInfo: "
        "['SetterError CreationInfo: Method "
    )
    dangling = copy.deepcopy(spdx)
    dangling["relationships"][0]["relatedSpdxElement"] = "SPDXRef-Nothing"
    missing = 'did not find the referenced spdx_id "SPDXRef-Nothing" in the SPDX document'
    assert refusal("spdx", dangling) == f"the SPDX SBOM does not validate: {missing}"
    dangling["relationships"][1]["relatedSpdxElement"] = "SPDXRef-Nothing"
    assert refusal("spdx", dangling) == f"the SPDX SBOM does not validate: {missing} (and 1 more)"
    cdx = sbom_of((SUBJECT, packages), "cyclonedx").document
    wrong = copy.deepcopy(cdx)
    wrong["components"][1]["type"] = "gadget"
    assert refusal("cyclonedx", wrong) == (
        "the CycloneDX SBOM does not validate at /components/1/type: 'gadget' is not one of "
        "['application', 'framework', 'library', 'container', 'platform', 'operating-system', "
        "'device', 'device-driver', 'firmware', 'file', 'machine-learning-model', 'data', "
        "'cryptographic-asset']"
    )
