"""Release tags for a pushed image: a version with date and serial, the commit, on one digest.

After `build --push` the registry serves the image under the moving tag the
user gave (`latest`, or a channel such as `stable`). Release tags are added
beside it, in the registry itself (`skopeo copy --preserve-digests` of the
digest: only a manifest is written, no layer moves):

- `VERSION.DATE.SERIAL`: VERSION is the recipe's `org.opencontainers.image.version`
  label, else the base's version (`22.03-LTS-SP2` from
  `...:22.03-LTS-SP2.20230922.0-x86_64`); DATE is the commit's day (UTC), so a
  re-run of the same commit gives the same date; SERIAL counts from 0 per day,
  and a tag of that day already naming this digest is reused, so re-running a
  finished job adds nothing.
- `sha-COMMIT` (12 hex digits), left out when the work tree is dirty: the
  image is then not that commit's.

Every tag is read back and must name the same digest.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from nestcustom import git, proc
from nestcustom.errors import NestcustomError
from nestcustom.gitops.blobs import repository_of
from nestcustom.gitops.imagefacts import skopeo_argv
from nestcustom.image import registry
from nestcustom.recipe.model import ARCH_SUFFIX, Recipe

VERSION_LABEL = "org.opencontainers.image.version"
_BUILD_ID = re.compile(r"\.\d{8}\.\d+$")  # NestOS tags: STREAM.YYYYMMDD.N[-arch]
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ReleaseTags:
    version: str  # VERSION.DATE.SERIAL
    commit: str | None  # sha-COMMIT, None for a dirty tree or no git
    note: str = ""  # why a tag was left out

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.version, *([self.commit] if self.commit else []))


def recipe_version(recipe: Recipe) -> str:
    """The recipe's own version label, else the base's version, else "0"."""
    own = dict(recipe.labels).get(VERSION_LABEL, "").strip()
    if own:
        version = own
    else:
        tag = recipe.base.image.rpartition("/")[2].partition(":")[2]
        version = _BUILD_ID.sub("", ARCH_SUFFIX.sub("", tag))
        if version in ("", "latest"):  # a moving tag is no version
            version = "0"
    version = re.sub(r"[^A-Za-z0-9_.-]", "-", version).lstrip(".-")
    return version[:100] or "0"


def _day(project: Path) -> tuple[str, dict[str, str]]:
    facts = git.provenance(project)
    epoch = int(facts["epoch"]) if "epoch" in facts else int(time.time())
    return time.strftime("%Y%m%d", time.gmtime(epoch)), facts


def _list_tags(repository: str, tls_verify: bool) -> list[str]:
    done = proc.run(skopeo_argv(repository, tls_verify, "list-tags"), check=False, timeout=120)
    if done.returncode != 0:
        raise NestcustomError(
            f"cannot list the tags of {repository}: {done.stderr.strip()[-300:]}",
            "check the login (podman login) and --tls-verify",
        )
    return [str(t) for t in json.loads(done.stdout).get("Tags") or []]


def choose_tags(
    recipe: Recipe, reference: str, digest: str, project: Path, tls_verify: bool = True
) -> ReleaseTags:
    repository = repository_of(reference)
    day, facts = _day(project)
    prefix = f"{recipe_version(recipe)}.{day}."
    existing = _list_tags(repository, tls_verify)
    serials = sorted(
        int(tag.removeprefix(prefix))
        for tag in existing
        if tag.startswith(prefix) and tag.removeprefix(prefix).isdigit()
    )
    serial = None
    for number in reversed(serials):  # a re-run finds its own tag, usually the last one
        served, _ = registry.manifest(f"{repository}:{prefix}{number}", tls_verify=tls_verify)
        if served == digest:
            serial = number
            break
    if serial is None:
        serial = serials[-1] + 1 if serials else 0
    revision = facts.get("revision", "")
    commit, note = None, ""
    if not revision:
        note = "no sha- tag: the project is not a git checkout with commits"
    elif revision.endswith("-dirty"):
        note = "no sha- tag: the work tree has uncommitted changes"
    else:
        commit = f"sha-{revision[:12]}"
    return ReleaseTags(f"{prefix}{serial}", commit, note)


def add_tags(
    reference: str, digest: str, tags: tuple[str, ...], tls_verify: bool = True
) -> list[str]:
    """Tag `digest` in `reference`'s repository as each of `tags`; the references made."""
    repository = repository_of(reference)
    made = []
    for tag in tags:
        if not _TAG.match(tag):
            raise NestcustomError(f"{tag!r} is not a valid tag")
        target = f"{repository}:{tag}"
        registry.retag(f"{repository}@{digest}", target, tls_verify=tls_verify)
        served, _ = registry.manifest(target, tls_verify=tls_verify)
        if served != digest:
            raise NestcustomError(
                f"{target} names {served}, not the pushed {digest}",
                "another push to the same tag raced this one; build again",
            )
        made.append(target)
    return made
