"""What the DVD offers: its repositories, signing keys and release, read from the image.

Two layouts exist in the wild and both are read:
* EL8 and later: `.treeinfo` (productmd) lists variants such as BaseOS and
  AppStream, each with its own repository (comps in BaseOS, modular metadata
  in AppStream);
* EL7 style: one repository at the root (`repodata/`), with or without an
  old `.treeinfo` that has no variants.
Only the metadata the resolver needs is copied out (repomd.xml and the files it
names, without changelogs and sqlite copies); packages come later, only those
the plan needs.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException, ElementTree

from nestcustom.base.isofile import IsoFormat, IsoReader
from nestcustom.errors import BadInputError

_REPO_NS = "{http://linux.duke.edu/metadata/repo}"
# Not needed to resolve or install: changelogs, and sqlite copies of the XML.
_SKIP_TYPES = re.compile(r"^(other.*|.*_db|.*_zck)$")
_KEY_NAME = re.compile(r"^(RPM-)?GPG-KEY[^/]*$")


@dataclass(frozen=True)
class Repo:
    id: str  # BaseOS, AppStream, or "dvd" for a root repository
    path: str  # directory on the image holding repodata/ ("" for the root)
    metadata: tuple[str, ...]  # repodata files on the image (repomd.xml first)
    has_comps: bool
    has_modules: bool


@dataclass(frozen=True)
class Release:
    name: str  # "NewStart CGS Linux"
    version: str  # "6.06"
    arch: str  # x86_64
    source_date_epoch: int  # the ISO's build time: the image's clock


@dataclass(frozen=True)
class Media:
    repos: tuple[Repo, ...]
    keys: tuple[str, ...]  # paths of the public signing keys on the image
    release: Release
    layout: str  # "treeinfo" or "root repodata"


def _treeinfo(reader: IsoReader) -> configparser.ConfigParser | None:
    if not reader.exists("/.treeinfo"):
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(reader.read_bytes("/.treeinfo", limit=1024 * 1024).decode())
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise BadInputError(f"{reader.path}: /.treeinfo cannot be parsed: {exc}") from exc
    return parser


def _metadata(reader: IsoReader, repo_dir: str) -> tuple[tuple[str, ...], bool, bool]:
    prefix = f"/{repo_dir}/" if repo_dir else "/"
    repomd = f"{prefix}repodata/repomd.xml"
    try:
        root = ElementTree.fromstring(reader.read_bytes(repomd, limit=16 * 1024 * 1024))
    except (ParseError, DefusedXmlException) as exc:
        raise BadInputError(f"{reader.path}: {repomd} is not valid XML: {exc}") from exc
    files = [repomd]
    types = set()
    for data in root.findall(f"{_REPO_NS}data"):
        kind = data.get("type", "")
        location = data.find(f"{_REPO_NS}location")
        if location is None or _SKIP_TYPES.match(kind):
            continue
        href = location.get("href", "")
        if not href or href.startswith("/") or ".." in href.split("/"):
            raise BadInputError(
                f"{reader.path}: {repomd} names an odd location {href!r}: outside its repository",
                "repository metadata names files below the repository: is the ISO what the "
                "vendor published?",
            )
        path = f"{prefix}{href}"
        if not reader.exists(path):
            raise BadInputError(
                f"{reader.path}: {repomd} names {href}, which is not on the image",
                "the image is incomplete or damaged",
            )
        files.append(path)
        types.add(kind)
    if "primary" not in types:
        raise BadInputError(f"{reader.path}: {repomd} has no primary metadata")
    return tuple(files), bool(types & {"group", "group_gz"}), "modules" in types


def find_repos(reader: IsoReader, parser: configparser.ConfigParser | None) -> tuple[Repo, ...]:
    repos: list[Repo] = []
    variants = parser.get("tree", "variants", fallback="") if parser else ""
    for variant in (v.strip() for v in variants.split(",") if v.strip()):
        section = f"variant-{variant}"
        if parser is None or not parser.has_section(section):
            raise BadInputError(
                f"{reader.path}: .treeinfo lists variant {variant} but has no [{section}]"
            )
        written = parser.get(section, "repository", fallback=variant)
        directory = written.strip("/")
        if directory == ".":
            directory = ""
        if written.startswith("/") or ".." in directory.split("/"):
            raise BadInputError(
                f"{reader.path}: .treeinfo variant {variant} names repository {written!r}, "
                "outside the image's tree",
                "a .treeinfo repository is a path relative to the image's top: is the ISO "
                "what the vendor published?",
            )
        if not reader.exists(f"/{directory}/repodata/repomd.xml".replace("//", "/")):
            raise BadInputError(
                f"{reader.path}: .treeinfo variant {variant} names repository "
                f"{directory or '/'}, which has no repodata/repomd.xml"
            )
        files, comps, modules = _metadata(reader, directory)
        repos.append(
            Repo(parser.get(section, "id", fallback=variant), directory, files, comps, modules)
        )
    if repos:
        return tuple(repos)
    if reader.exists("/repodata/repomd.xml"):
        files, comps, modules = _metadata(reader, "")
        return (Repo("dvd", "", files, comps, modules),)
    raise BadInputError(
        f"{reader.path}: the image holds no package repository "
        "(neither .treeinfo variants nor /repodata/repomd.xml)",
        "is this the distribution's DVD (not a boot or netinstall image)?",
    )


def _release(
    reader: IsoReader, parser: configparser.ConfigParser | None, fmt: IsoFormat
) -> Release:
    def get(*places: tuple[str, str]) -> str:
        for section, key in places:
            if parser is not None and parser.has_option(section, key):
                return parser.get(section, key).strip()
        return ""

    name = get(("release", "name"), ("product", "name"), ("general", "family")) or fmt.volume_id
    version = get(("release", "version"), ("product", "version"), ("general", "version"))
    arch = get(("tree", "arch"), ("general", "arch"))
    stamp = get(("tree", "build_timestamp"), ("general", "timestamp"))
    epoch = 0
    if stamp:
        try:
            epoch = int(float(stamp))
        except ValueError:
            raise BadInputError(
                f"{reader.path}: .treeinfo has an odd timestamp {stamp!r}"
            ) from None
    elif fmt.created is not None:
        epoch = int(fmt.created.timestamp())
    return Release(name or "unknown", version or "unknown", arch, epoch)


def read_media(reader: IsoReader, fmt: IsoFormat) -> Media:
    """The image's repositories, keys and release."""
    parser = _treeinfo(reader)
    repos = find_repos(reader, parser)
    keys = tuple(
        path for path in reader.files() if path.count("/") == 1 and _KEY_NAME.match(path[1:])
    )
    layout = "treeinfo" if repos[0].path else "root repodata"
    return Media(repos, keys, _release(reader, parser, fmt), layout)


def copy_metadata(reader: IsoReader, media: Media, dest: Path) -> dict[str, Path]:
    """Copy each repository's metadata under dest/<path>; returns repo id -> local directory."""
    for repo in media.repos:
        for path in repo.metadata:
            reader.extract(path, dest / path.lstrip("/"))
    return local_metadata(media, dest)


def local_metadata(media: Media, dest: Path) -> dict[str, Path]:
    """repo id -> the directory under dest that copy_metadata put its metadata in."""
    return {repo.id: dest / repo.path if repo.path else dest for repo in media.repos}
