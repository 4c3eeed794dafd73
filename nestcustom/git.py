"""What git says about the project, for image provenance labels."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from nestcustom import proc


def provenance(project: Path) -> dict[str, str]:
    """`source` (remote URL, credentials stripped), `revision` (commit, -dirty when changed),
    `committed` (the commit's time, ISO 8601 UTC) and `epoch` (the same, in seconds).

    The time is the commit's even when the tree is dirty: a dirty tree is said by
    `revision`, never by a clock that would change every build's labels.
    """
    facts: dict[str, str] = {}
    try:
        base = ["git", "-C", str(project)]
        head = proc.run([*base, "log", "-1", "--format=%H %ct"], timeout=10).stdout.split()
        if len(head) != 2:
            return facts  # a repository without commits
        dirty = proc.run(
            [*base, "status", "--porcelain", "--untracked-files=normal"], timeout=30
        ).stdout.strip()
        facts["revision"] = head[0] + ("-dirty" if dirty else "")
        facts["epoch"] = head[1]
        facts["committed"] = iso_time(int(head[1]))
        remote = proc.run([*base, "remote", "get-url", "origin"], check=False, timeout=10)
        if remote.returncode == 0 and remote.stdout.strip():
            facts["source"] = _without_credentials(remote.stdout.strip())
    except proc.CommandError:
        pass  # not a git checkout, or no git: the labels are simply left out
    return facts


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}" if sep else url
