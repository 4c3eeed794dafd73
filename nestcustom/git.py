"""What git says about the project, for image provenance labels."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from nestcustom import proc


def provenance(project: Path) -> dict[str, str]:
    """`source` (remote URL, credentials stripped), `revision` (commit, -dirty when changed),
    and `committed` (the commit's time, ISO 8601 UTC) when nothing is changed."""
    facts: dict[str, str] = {}
    try:
        base = ["git", "-C", str(project)]
        head = proc.run([*base, "rev-parse", "HEAD"], timeout=10).stdout.strip()
        dirty = proc.run([*base, "status", "--porcelain"], timeout=30).stdout.strip()
        facts["revision"] = head + ("-dirty" if dirty else "")
        if not dirty:
            epoch = int(proc.run([*base, "log", "-1", "--format=%ct"], timeout=10).stdout.strip())
            facts["committed"] = datetime.fromtimestamp(epoch, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        remote = proc.run([*base, "remote", "get-url", "origin"], check=False, timeout=10)
        if remote.returncode == 0 and remote.stdout.strip():
            facts["source"] = _without_credentials(remote.stdout.strip())
    except proc.CommandError:
        pass  # not a git checkout, or no git: the labels are simply left out
    return facts


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}" if sep else url
