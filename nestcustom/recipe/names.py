"""Names as the tools read them: a systemd unit as systemctl does, a COPR project's repo as
`dnf copr enable` writes it."""

from __future__ import annotations

UNIT_SUFFIXES = (
    ".service", ".socket", ".timer", ".path", ".target", ".mount", ".automount", ".swap", ".slice"
)  # fmt: skip


def unit_name(name: str) -> str:
    """A unit name as systemctl reads it: without a known suffix, `.service`."""
    return name if name.endswith(UNIT_SUFFIXES) else f"{name}.service"


def units(names: list[str] | None) -> tuple[str, ...]:
    return tuple(unit_name(name) for name in names) if names else ()


EUR = "https://eur.openeuler.openatom.cn"  # openEuler's COPR instance


def copr_repo(project: str, chroot: str, instance: str | None) -> dict[str, str]:
    """A COPR project's repo as `dnf copr enable` writes it: id copr:HOST:OWNER:PROJECT (a
    group's @ spelled group_), results/OWNER/PROJECT/CHROOT-$basearch/, its pubkey.gpg."""
    base = (instance or EUR).rstrip("/")
    owner, name = project.split("/", 1)
    host = base.split("://", 1)[-1].split("/", 1)[0]
    results = f"{base}/results/{owner}/{name}"
    return {
        "id": f"copr:{host}:{owner.replace('@', 'group_')}:{name}",
        "baseurl": f"{results}/{chroot}-$basearch/",
        "gpgkey": f"{results}/pubkey.gpg",
    }
