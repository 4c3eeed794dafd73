"""An SBOM of an image, from the image's own RPM database: SPDX 2.3 or CycloneDX 1.6 JSON.

Every installed package with its name, epoch, version, release, arch, license,
source RPM, vendor, the id of the key that signed it and its payload digest
(where rpm recorded one), plus the image itself (digest or ID), its base and
the recipe it was built from (its labels). The database is read as `diff`
reads it (imagedb.py): in place from local storage, or only the layers down
to it from a registry; nothing in the image runs.

Each document is checked before it is returned: SPDX by the SPDX project's
own parser and validator (spdx-tools), CycloneDX against the official JSON
schema that cyclonedx-python-lib ships, both offline. The same image gives
the same document (times come from the image's `created` label).
"""

from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestcustom import __version__, proc
from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.gitops.imagedb import ImageDb, check_reference, open_image
from nestcustom.gitops.imagefacts import ImageFacts, local_facts, registry_facts
from nestcustom.image.rpmdb import RECORD, UNIT, _rpm, write_db

FORMATS = ("spdx", "cyclonedx")
MEDIA_TYPES = {"spdx": "application/spdx+json", "cyclonedx": "application/vnd.cyclonedx+json"}
_SIG = (
    "%|RSAHEADER?{%{RSAHEADER:pgpsig}}:{%|DSAHEADER?{%{DSAHEADER:pgpsig}}:"
    "{%|SIGPGP?{%{SIGPGP:pgpsig}}:{%|SIGGPG?{%{SIGGPG:pgpsig}}:{}|}|}|}|"
)
_FIELDS = [
    "%{NAME}",
    "%{EPOCHNUM}",
    "%{VERSION}",
    "%{RELEASE}",
    "%{ARCH}",
    "%{LICENSE}",
    "%{SOURCERPM}",
    "%{VENDOR}",
    _SIG,
    "%{PAYLOADDIGEST}",
    "%{PAYLOADDIGESTALGO}",
]
_KEY_ID = re.compile(r"Key ID ([0-9a-fA-F]{8,40})")
_NOT_SET = "(none)"
EPOCH_TIME = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, order=True)
class RpmPackage:
    name: str
    arch: str
    epoch: int
    version: str
    release: str
    license: str | None
    source_rpm: str | None
    vendor: str | None
    key_id: str | None  # lower-case hex of the signing key, when the package is signed
    payload_sha256: str | None

    @property
    def evr(self) -> str:
        return (f"{self.epoch}:" if self.epoch else "") + f"{self.version}-{self.release}"

    @property
    def purl(self) -> str:
        qualifiers = [f"arch={self.arch}"] + ([f"epoch={self.epoch}"] if self.epoch else [])
        return f"pkg:rpm/{self.name}@{self.version}-{self.release}?{'&'.join(qualifiers)}"


@dataclass(frozen=True)
class Subject:
    """The image an SBOM describes."""

    reference: str
    digest: str | None  # manifest digest, when read from a registry or given
    image_id: str
    labels: dict[str, str]


def _value(text: str) -> str | None:
    return None if text in ("", _NOT_SET) else text


def read_rpm_packages(db: ImageDb) -> tuple[RpmPackage, ...]:
    """Every package of the image's RPM database, with what an SBOM states of it."""
    if db.db is None:
        raise BadInputError(
            f"{db.reference}: the image has no RPM database "
            "(looked in usr/share/rpm, usr/lib/sysimage/rpm, var/lib/rpm)",
            "an SBOM is made from the packages rpm installed; this image has none",
        )
    with tempfile.TemporaryDirectory(prefix="nestcustom-sbom-") as tmp:
        directory = write_db(db.db, Path(tmp))
        done = proc.run(
            [*_rpm(directory, db.db.backend), "-qa", "--qf", UNIT.join(_FIELDS) + RECORD],
            check=False,
            timeout=300,
        )
    if done.returncode != 0:
        raise NestcustomError(
            f"the host's rpm cannot read the image's RPM database: {done.stderr.strip()[-300:]}",
            "install an rpm that reads this database format (apt-get install rpm)",
        )
    found = []
    for record in filter(None, done.stdout.split(RECORD)):
        name, epoch, version, release, arch, lic, srpm, vendor, sig, payload, algo = record.split(
            UNIT
        )
        if name == "gpg-pubkey":
            continue  # imported keys, not software
        key = _KEY_ID.search(sig)
        found.append(
            RpmPackage(
                name,
                arch,
                int(epoch or 0),
                version,
                release,
                _value(lic),
                _value(srpm),
                _value(vendor),
                key.group(1).lower() if key else None,
                payload if _value(payload) and algo.strip() == "8" else None,  # 8: SHA-256
            )
        )
    return tuple(sorted(found))


def subject_of(spec: str, tls_verify: bool) -> Subject:
    """The image's identity and labels (local storage first, as open_image reads it)."""
    bare = spec.removeprefix("containers-storage:").removeprefix("docker://")
    facts: ImageFacts | None = None
    if not spec.startswith("docker://"):
        facts = local_facts(bare)
    if facts is None and not spec.startswith("containers-storage:"):
        facts = registry_facts(bare, tls_verify)
    if facts is None:
        raise BadInputError(f"{spec}: no such image", "podman images, or check the registry")
    digest = bare.partition("@")[2] or None
    return Subject(bare, digest, facts.image_id, facts.labels)


def _created(subject: Subject) -> str:
    created = subject.labels.get("org.opencontainers.image.created", "")
    return created if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created) else EPOCH_TIME


def _spdx_id(package: RpmPackage) -> str:
    text = f"{package.name}-{package.evr}.{package.arch}"
    return "SPDXRef-RPM-" + re.sub(r"[^A-Za-z0-9.-]", "-", text)


def _provenance(subject: Subject) -> list[tuple[str, str]]:
    labels = subject.labels
    keys = (
        "org.opencontainers.image.base.name",
        "org.opencontainers.image.base.digest",
        "io.nestcustom.recipe",
        "io.nestcustom.recipe.digest",
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
    )
    return [(k, labels[k]) for k in keys if labels.get(k)]


def spdx_document(subject: Subject, packages: tuple[RpmPackage, ...]) -> dict[str, Any]:
    identity = subject.digest or "sha256:" + subject.image_id
    image_package: dict[str, Any] = {
        "SPDXID": "SPDXRef-Image",
        "name": subject.reference,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": identity.partition(":")[2]}],
        "comment": "; ".join(f"{k}={v}" for k, v in _provenance(subject)) or "no provenance labels",
    }
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Image",
        },
    ]
    described = [image_package]
    base = subject.labels.get("org.opencontainers.image.base.name")
    if base:
        described.append(
            {
                "SPDXID": "SPDXRef-Base",
                "name": base,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "primaryPackagePurpose": "CONTAINER",
            }
        )
        relationships.append(
            {
                "spdxElementId": "SPDXRef-Image",
                "relationshipType": "DESCENDANT_OF",
                "relatedSpdxElement": "SPDXRef-Base",
            }
        )
    for package in packages:
        entry: dict[str, Any] = {
            "SPDXID": _spdx_id(package),
            "name": package.name,
            "versionInfo": package.evr,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": package.purl,
                }
            ],
            "comment": _rpm_comment(package),
        }
        if package.vendor:
            entry["supplier"] = "Organization: " + package.vendor.replace("\n", " ")
        if package.source_rpm:
            entry["sourceInfo"] = f"built from {package.source_rpm}"
        if package.payload_sha256:
            entry["checksums"] = [{"algorithm": "SHA256", "checksumValue": package.payload_sha256}]
        described.append(entry)
        relationships.append(
            {
                "spdxElementId": "SPDXRef-Image",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": _spdx_id(package),
            }
        )
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{subject.reference} RPM packages",
        "documentNamespace": f"https://nestcustom.invalid/spdx/{identity.replace(':', '-')}",
        "creationInfo": {
            "created": _created(subject),
            "creators": [f"Tool: nestcustom-{__version__}"],
        },
        "packages": described,
        "relationships": relationships,
    }


def _rpm_comment(package: RpmPackage) -> str:
    """What SPDX has no field for: the RPM license text (often not an SPDX expression), the
    arch and the signing key, in one line a reader can split."""
    parts = [f"arch={package.arch}", f"license={package.license or 'unknown'}"]
    parts.append(f"signature-key-id={package.key_id or 'unsigned'}")
    return "; ".join(parts)


def cyclonedx_document(subject: Subject, packages: tuple[RpmPackage, ...]) -> dict[str, Any]:
    identity = subject.digest or "sha256:" + subject.image_id
    components = []
    for package in packages:
        properties = [
            {"name": "rpm:epoch", "value": str(package.epoch)},
            {"name": "rpm:release", "value": package.release},
            {"name": "rpm:arch", "value": package.arch},
        ]
        if package.source_rpm:
            properties.append({"name": "rpm:sourcerpm", "value": package.source_rpm})
        properties.append({"name": "rpm:signature-key-id", "value": package.key_id or "unsigned"})
        component: dict[str, Any] = {
            "type": "library" if package.name.startswith("lib") else "application",
            "bom-ref": package.purl,
            "name": package.name,
            "version": package.evr,
            "purl": package.purl,
            "properties": properties,
        }
        if package.license:
            component["licenses"] = [{"license": {"name": package.license}}]
        if package.vendor:
            component["supplier"] = {"name": package.vendor}
        if package.payload_sha256:
            component["hashes"] = [{"alg": "SHA-256", "content": package.payload_sha256}]
        components.append(component)
    provenance = [{"name": f"nestcustom:{k}", "value": v} for k, v in _provenance(subject)]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'nestcustom:' + identity)}",
        "version": 1,
        "metadata": {
            "timestamp": _created(subject),
            "tools": {
                "components": [
                    {"type": "application", "name": "nestcustom", "version": __version__}
                ]
            },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": subject.reference,
                "hashes": [{"alg": "SHA-256", "content": identity.partition(":")[2]}],
                "properties": provenance,
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": [c["bom-ref"] for c in components]}],
    }


def load_validator(fmt: str) -> None:
    """Import `fmt`'s validator ahead (spdx-tools takes 0.15 s to import): validate's
    imports are lazy, so that commands without an SBOM never pay for them."""
    if fmt == "cyclonedx":
        import cyclonedx.validation.json  # noqa: F401
    else:
        import spdx_tools.spdx.validation.document_validator  # noqa: F401


def validate(fmt: str, document: dict[str, Any]) -> None:
    """Raise unless `document` is valid in its format (offline, see the module doc)."""
    if fmt == "cyclonedx":
        import json

        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator

        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
        if error is not None:
            data = getattr(error, "data", None)
            where = "/".join(str(p) for p in getattr(data, "absolute_path", []))
            raise NestcustomError(
                f"the CycloneDX SBOM does not validate at /{where}: "
                f"{getattr(data, 'message', str(error))[:300]}",
                "please report it",
            )
        return
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    try:
        parsed = JsonLikeDictParser().parse(document)  # type: ignore[no-untyped-call]
    except SPDXParsingError as exc:
        messages: list[str] = exc.get_messages()  # type: ignore[no-untyped-call]
        raise NestcustomError(
            f"the SPDX SBOM does not parse: {'; '.join(messages)[:300]}",
            "please report it",
        ) from exc
    problems = validate_full_spdx_document(parsed)
    if problems:
        raise NestcustomError(
            f"the SPDX SBOM does not validate: {problems[0].validation_message}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            "please report it",
        )


@dataclass(frozen=True)
class Sbom:
    format: str
    document: dict[str, Any]
    packages: int
    subject: Subject


def make_sbom(
    spec: str,
    fmt: str = "spdx",
    *,
    tls_verify: bool = True,
    name: str | None = None,
    digest: str | None = None,
) -> Sbom:
    """The validated SBOM of the image `spec` names (as `diff` reads images); `name` and
    `digest` say what it is published as, when `spec` is the local image."""
    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    return sbom_of(read_image(spec, tls_verify), fmt, name=name, digest=digest)


def read_image(spec: str, tls_verify: bool = True) -> tuple[Subject, tuple[RpmPackage, ...]]:
    """What an SBOM is made of: the image's identity and labels, and its rpmdb's packages."""
    check_reference(spec)
    subject = subject_of(spec, tls_verify)
    return subject, read_rpm_packages(open_image(spec, tls_verify=tls_verify))


def sbom_of(
    read: tuple[Subject, tuple[RpmPackage, ...]],
    fmt: str = "spdx",
    *,
    name: str | None = None,
    digest: str | None = None,
) -> Sbom:
    """The validated SBOM of what read_image read, published as `name` and `digest`."""
    subject, packages = read
    subject = Subject(
        name or subject.reference, digest or subject.digest, subject.image_id, subject.labels
    )
    make = spdx_document if fmt == "spdx" else cyclonedx_document
    document = make(subject, packages)
    validate(fmt, document)
    return Sbom(fmt, document, len(packages), subject)
